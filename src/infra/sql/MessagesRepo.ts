import { SqlClient, SqlSchema } from "@effect/sql"
import { Effect, Layer, Option, Schema } from "effect"
import { ConversationId, Message, MessageId, previewOf } from "../../domain/chat/Model.js"
import { type Appended, type HistoryQuery, MessagesRepo, type NewMessage } from "../../domain/ports/MessagesRepo.js"
import { UserId } from "../../domain/users/Model.js"
import { isUniqueViolation } from "./Errors.js"

export const layer = Layer.effect(
  MessagesRepo,
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient

    /**
     * One statement, one round trip (system messages, written by the server, go in whatever the status): the conversation row is locked and its
     * counter bumped, so concurrent sends are numbered 1, 2, 3, … in commit
     * order; if the insert fails (a concurrent retry of the same
     * clientMessageId), the whole statement rolls back and no seq is used.
     */
    const insert = (m: NewMessage) =>
      sql<Record<string, unknown>>`
        WITH conv AS (
          UPDATE conversations c SET
            last_seq = c.last_seq + 1,
            last_message_at = now(),
            last_message_preview = ${previewOf(m.content)},
            user_unread = c.user_unread + CASE WHEN c.user_id = ${m.receiverId}::uuid THEN 1 ELSE 0 END,
            trainer_unread = c.trainer_unread + CASE WHEN c.trainer_id = ${m.receiverId}::uuid THEN 1 ELSE 0 END,
            updated_at = now()
          WHERE c.id = ${m.conversationId} AND (c.status = 'active' OR ${m.type}::message_type = 'system')
            AND NOT EXISTS (
              SELECT 1 FROM messages d
              WHERE d.conversation_id = ${m.conversationId} AND d.sender_id = ${m.senderId}::uuid
                AND d.client_message_id = ${m.clientMessageId}::text
            )
          RETURNING c.id, c.last_seq, c.last_message_at
        )
        INSERT INTO messages (conversation_id, seq, sender_id, receiver_id, content, type, client_message_id,
                              file_url, file_name, created_at, updated_at)
        SELECT id, last_seq, ${m.senderId}::uuid, ${m.receiverId}::uuid, ${m.content}, ${m.type}::message_type,
               ${m.clientMessageId}::text, ${m.fileUrl}::text, ${m.fileName}::text, last_message_at, last_message_at
        FROM conv
        RETURNING *`

    const decodeMessage = Schema.decodeUnknown(Message)

    const findByClientId = SqlSchema.findOne({
      Request: Schema.Struct({ conversationId: ConversationId, senderId: UserId, clientMessageId: Schema.String }),
      Result: Message,
      execute: ({ clientMessageId, conversationId, senderId }) =>
        sql`SELECT * FROM messages WHERE conversation_id = ${conversationId} AND sender_id = ${senderId}
            AND client_message_id = ${clientMessageId}`
    })

    const original = (m: NewMessage): Effect.Effect<Appended, unknown> =>
      m.senderId === null || m.clientMessageId === null
        ? Effect.succeed({ _tag: "Rejected" })
        : findByClientId({ conversationId: m.conversationId, senderId: m.senderId, clientMessageId: m.clientMessageId })
          .pipe(Effect.map(Option.match({
            onNone: (): Appended => ({ _tag: "Rejected" }),
            onSome: (message): Appended => ({ _tag: "Duplicate", message })
          })))

    const append = (m: NewMessage): Effect.Effect<Appended, unknown> =>
      insert(m).pipe(
        Effect.flatMap((rows) =>
          rows.length === 0
            // Not active, gone, or a retry of a message already stored.
            ? original(m)
            : Effect.map(decodeMessage(rows[0]), (message): Appended => ({ _tag: "Created", message }))
        ),
        Effect.catchIf(isUniqueViolation("messages_client_id_key"), () => original(m))
      )

    const findById = SqlSchema.findOne({
      Request: MessageId,
      Result: Message,
      execute: (id) => sql`SELECT * FROM messages WHERE id = ${id}`
    })

    const page = (conversationId: ConversationId, query: HistoryQuery) => {
      const bounds = sql.and([
        sql`conversation_id = ${conversationId}`,
        ...(query.afterSeq === undefined ? [] : [sql`seq > ${query.afterSeq}`]),
        ...(query.beforeSeq === undefined ? [] : [sql`seq < ${query.beforeSeq}`])
      ])
      // Catching up reads forward from afterSeq; otherwise the newest page (before beforeSeq) is wanted.
      const order = query.afterSeq === undefined ? sql`ORDER BY seq DESC` : sql`ORDER BY seq ASC`
      return SqlSchema.findAll({
        Request: Schema.Void,
        Result: Message,
        execute: () => sql`SELECT * FROM messages WHERE ${bounds} ${order} LIMIT ${query.limit + 1}`
      })(undefined).pipe(Effect.map((rows) => {
        const hasMore = rows.length > query.limit
        const kept = hasMore ? rows.slice(0, query.limit) : rows
        return { messages: query.afterSeq === undefined ? [...kept].reverse() : kept, hasMore }
      }))
    }

    const markRead = SqlSchema.findOne({
      Request: Schema.Struct({ id: MessageId, receiverId: UserId }),
      Result: Message,
      execute: ({ id, receiverId }) =>
        sql`WITH m AS (
              UPDATE messages SET is_read = true, read_at = now(), updated_at = now()
              WHERE id = ${id} AND receiver_id = ${receiverId} AND NOT is_read
              RETURNING *
            ), c AS (
              UPDATE conversations c SET
                user_unread = CASE WHEN c.user_id = m.receiver_id THEN GREATEST(c.user_unread - 1, 0) ELSE c.user_unread END,
                trainer_unread = CASE WHEN c.trainer_id = m.receiver_id THEN GREATEST(c.trainer_unread - 1, 0) ELSE c.trainer_unread END
              FROM m WHERE c.id = m.conversation_id
              RETURNING c.id
            )
            SELECT m.* FROM m`
    })

    return MessagesRepo.of({
      append: (message) => append(message).pipe(Effect.orDie, Effect.withSpan("MessagesRepo.append")),
      findById: (id) => findById(id).pipe(Effect.orDie, Effect.withSpan("MessagesRepo.findById")),
      history: (conversationId, query) =>
        page(conversationId, query).pipe(Effect.orDie, Effect.withSpan("MessagesRepo.history")),
      markRead: (id, receiverId) => markRead({ id, receiverId }).pipe(Effect.orDie, Effect.withSpan("MessagesRepo.markRead"))
    })
  })
)
