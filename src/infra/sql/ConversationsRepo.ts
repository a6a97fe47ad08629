import { SqlClient, SqlSchema } from "@effect/sql"
import { Effect, Layer, Option, Schema } from "effect"
import { Conversation, ConversationId, Seq } from "../../domain/chat/Model.js"
import { type ConversationSummary, ConversationsRepo } from "../../domain/ports/ConversationsRepo.js"
import { User, UserId } from "../../domain/users/Model.js"

const Total = Schema.Struct({ total: Schema.Number })
const Unread = Schema.Struct({ conversationId: ConversationId, count: Schema.Number })
const ReadUpTo = Schema.Struct({ changed: Schema.Number, readSeq: Seq })

export const layer = Layer.effect(
  ConversationsRepo,
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient

    const findById = SqlSchema.findOne({
      Request: ConversationId,
      Result: Conversation,
      execute: (id) => sql`SELECT * FROM conversations WHERE id = ${id}`
    })

    const Pair = Schema.Struct({ userId: UserId, trainerId: UserId })

    const insertPair = SqlSchema.findOne({
      Request: Pair,
      Result: Conversation,
      execute: ({ trainerId, userId }) =>
        sql`INSERT INTO conversations (user_id, trainer_id) VALUES (${userId}, ${trainerId})
            ON CONFLICT ON CONSTRAINT conversations_pair_key DO NOTHING RETURNING *`
    })

    const findPair = SqlSchema.single({
      Request: Pair,
      Result: Conversation,
      execute: ({ trainerId, userId }) =>
        sql`SELECT * FROM conversations WHERE user_id = ${userId} AND trainer_id = ${trainerId}`
    })

    const findOrCreate = (userId: UserId, trainerId: UserId) =>
      insertPair({ userId, trainerId }).pipe(
        Effect.flatMap(Option.match({
          onSome: (conversation) => Effect.succeed({ conversation, created: true }),
          onNone: () => Effect.map(findPair({ userId, trainerId }), (conversation) => ({ conversation, created: false }))
        }))
      )

    const recent = sql`ORDER BY last_message_at DESC NULLS LAST, created_at DESC, id`

    const listFor = (participantId: UserId, page: { readonly limit: number; readonly offset: number }) =>
      Effect.gen(function*() {
        const mine = sql`(user_id = ${participantId} OR trainer_id = ${participantId})`
        const [conversations, { total }] = yield* Effect.all([
          SqlSchema.findAll({
            Request: Schema.Void,
            Result: Conversation,
            execute: () =>
              sql`SELECT * FROM conversations WHERE ${mine} ${recent} LIMIT ${page.limit} OFFSET ${page.offset}`
          })(undefined),
          SqlSchema.single({
            Request: Schema.Void,
            Result: Total,
            execute: () => sql`SELECT count(*)::int AS total FROM conversations WHERE ${mine}`
          })(undefined)
        ])
        const counterpartIds = conversations.map((c) => c.userId === participantId ? c.trainerId : c.userId)
        const counterparts = counterpartIds.length === 0 ? [] : yield* SqlSchema.findAll({
          Request: Schema.Void,
          Result: User,
          execute: () => sql`SELECT * FROM users WHERE ${sql.in("id", counterpartIds)}`
        })(undefined)
        const byId = new Map(counterparts.map((user) => [user.id, user]))
        const items = conversations.flatMap((conversation, i): Array<ConversationSummary> => {
          const counterpart = byId.get(counterpartIds[i]!)
          if (counterpart === undefined) return []
          const unreadCount = conversation.userId === participantId ? conversation.userUnread : conversation.trainerUnread
          return [{ conversation, counterpart, unreadCount }]
        })
        return { items, total }
      })

    const list = (filter: {
      readonly status?: Conversation["status"]
      readonly userId?: UserId
      readonly trainerId?: UserId
      readonly limit: number
      readonly offset: number
    }) => {
      const where = sql.and([
        ...(filter.status === undefined ? [] : [sql`status = ${filter.status}`]),
        ...(filter.userId === undefined ? [] : [sql`user_id = ${filter.userId}`]),
        ...(filter.trainerId === undefined ? [] : [sql`trainer_id = ${filter.trainerId}`])
      ])
      return Effect.all({
        items: SqlSchema.findAll({
          Request: Schema.Void,
          Result: Conversation,
          execute: () =>
            sql`SELECT * FROM conversations WHERE ${where} ${recent} LIMIT ${filter.limit} OFFSET ${filter.offset}`
        })(undefined),
        total: SqlSchema.single({
          Request: Schema.Void,
          Result: Total,
          execute: () => sql`SELECT count(*)::int AS total FROM conversations WHERE ${where}`
        })(undefined).pipe(Effect.map((row) => row.total))
      })
    }

    const setStatus = SqlSchema.findOne({
      Request: Schema.Struct({ id: ConversationId, status: Conversation.fields.status, reason: Schema.NullOr(Schema.String) }),
      Result: Conversation,
      execute: ({ id, reason, status }) =>
        sql`UPDATE conversations SET status = ${status}, closed_reason = ${reason}, updated_at = now()
            WHERE id = ${id} RETURNING *`
    })

    const archiveOthers = SqlSchema.findAll({
      Request: Schema.Struct({ userId: UserId, keepTrainerId: UserId }),
      Result: Conversation,
      execute: ({ keepTrainerId, userId }) =>
        sql`UPDATE conversations SET status = 'archived', updated_at = now()
            WHERE user_id = ${userId} AND trainer_id <> ${keepTrainerId} AND status = 'active' RETURNING *`
    })

    const reactivate = SqlSchema.findOne({
      Request: Pair,
      Result: Conversation,
      execute: ({ trainerId, userId }) =>
        sql`UPDATE conversations SET status = 'active', updated_at = now()
            WHERE user_id = ${userId} AND trainer_id = ${trainerId} AND status = 'archived' RETURNING *`
    })

    const unreadFor = SqlSchema.findAll({
      Request: UserId,
      Result: Unread,
      execute: (id) =>
        sql`SELECT id AS conversation_id, CASE WHEN user_id = ${id} THEN user_unread ELSE trainer_unread END AS count
            FROM conversations
            WHERE (user_id = ${id} AND user_unread > 0) OR (trainer_id = ${id} AND trainer_unread > 0)
            ${recent}`
    })

    const counterpartsOf = SqlSchema.findAll({
      Request: UserId,
      Result: Schema.Struct({ id: UserId }),
      execute: (id) =>
        sql`SELECT CASE WHEN user_id = ${id} THEN trainer_id ELSE user_id END AS id
            FROM conversations WHERE (user_id = ${id} OR trainer_id = ${id}) AND status = 'active'`
    })

    const LastSeqRow = Schema.Struct({ conversationId: ConversationId, lastSeq: Seq })
    // One statement per thousand ids (far under the protocol's bound on parameters).
    const lastSeqs = (ids: ReadonlyArray<ConversationId>) =>
      Effect.forEach(
        Array.from({ length: Math.ceil(ids.length / 1000) }, (_, i) => ids.slice(i * 1000, i * 1000 + 1000)),
        SqlSchema.findAll({
          Request: Schema.Array(ConversationId),
          Result: LastSeqRow,
          execute: (chunk) => sql`SELECT id AS conversation_id, last_seq FROM conversations WHERE ${sql.in("id", chunk)}`
        })
      ).pipe(Effect.map((chunks) => chunks.flat()))

    // Reads only the seqs after the reader's read_seq (on the conversation's seq key), never the whole history:
    // what was addressed to the reader at or below it is read already (this statement moved it there).
    const markReadUpTo = SqlSchema.single({
      Request: Schema.Struct({ id: ConversationId, readerId: UserId, upToSeq: Schema.NullOr(Seq) }),
      Result: ReadUpTo,
      execute: ({ id, readerId, upToSeq }) =>
        sql`WITH target AS (
              SELECT id, LEAST(COALESCE(${upToSeq}::int, last_seq), last_seq) AS up_to,
                CASE WHEN user_id = ${readerId}::uuid THEN user_read_seq ELSE trainer_read_seq END AS read_seq
              FROM conversations WHERE id = ${id}
            ), changed AS (
              UPDATE messages m SET is_read = true, read_at = now(), updated_at = now()
              FROM target t
              WHERE m.conversation_id = t.id AND m.seq > t.read_seq AND m.seq <= t.up_to
                AND m.receiver_id = ${readerId}::uuid AND NOT m.is_read
              RETURNING m.id
            ), n AS (SELECT count(*)::int AS changed FROM changed)
            UPDATE conversations c SET
              user_unread = CASE WHEN c.user_id = ${readerId}::uuid THEN GREATEST(c.user_unread - n.changed, 0) ELSE c.user_unread END,
              trainer_unread = CASE WHEN c.trainer_id = ${readerId}::uuid THEN GREATEST(c.trainer_unread - n.changed, 0) ELSE c.trainer_unread END,
              user_read_seq = CASE WHEN c.user_id = ${readerId}::uuid THEN GREATEST(c.user_read_seq, t.up_to) ELSE c.user_read_seq END,
              trainer_read_seq = CASE WHEN c.trainer_id = ${readerId}::uuid THEN GREATEST(c.trainer_read_seq, t.up_to) ELSE c.trainer_read_seq END
            FROM target t, n
            WHERE c.id = t.id
            RETURNING n.changed,
              CASE WHEN c.user_id = ${readerId}::uuid THEN c.user_read_seq ELSE c.trainer_read_seq END AS read_seq`
    })

    return ConversationsRepo.of({
      findById: (id) => findById(id).pipe(Effect.orDie, Effect.withSpan("ConversationsRepo.findById")),
      findOrCreate: (userId, trainerId) =>
        findOrCreate(userId, trainerId).pipe(Effect.orDie, Effect.withSpan("ConversationsRepo.findOrCreate")),
      listFor: (participantId, page) =>
        listFor(participantId, page).pipe(Effect.orDie, Effect.withSpan("ConversationsRepo.listFor")),
      list: (filter) => list(filter).pipe(Effect.orDie, Effect.withSpan("ConversationsRepo.list")),
      setStatus: (id, status, reason) =>
        setStatus({ id, status, reason }).pipe(Effect.orDie, Effect.withSpan("ConversationsRepo.setStatus")),
      archiveOthers: (userId, keepTrainerId) =>
        archiveOthers({ userId, keepTrainerId }).pipe(Effect.orDie, Effect.withSpan("ConversationsRepo.archiveOthers")),
      reactivate: (userId, trainerId) =>
        reactivate({ userId, trainerId }).pipe(Effect.orDie, Effect.withSpan("ConversationsRepo.reactivate")),
      counterpartsOf: (id) =>
        counterpartsOf(id).pipe(
          Effect.map((rows) => rows.map((row) => row.id)),
          Effect.orDie,
          Effect.withSpan("ConversationsRepo.counterpartsOf")
        ),
      unreadFor: (id) => unreadFor(id).pipe(Effect.orDie, Effect.withSpan("ConversationsRepo.unreadFor")),
      lastSeqs: (ids) => lastSeqs(ids).pipe(Effect.orDie, Effect.withSpan("ConversationsRepo.lastSeqs")),
      markReadUpTo: (id, readerId, upToSeq) =>
        markReadUpTo({ id, readerId, upToSeq: upToSeq ?? null }).pipe(
          Effect.orDie,
          Effect.withSpan("ConversationsRepo.markReadUpTo")
        )
    })
  })
)
