import { SqlClient, SqlSchema, type Statement } from "@effect/sql"
import { Chunk, Config, DateTime, Deferred, Effect, Layer, Option, Queue, Schema } from "effect"
import { ConversationId, Message, MessageId, type MessageType, previewOf, type Seq } from "../../domain/chat/Model.js"
import { type Appended, type HistoryQuery, MessagesRepo, type NewMessage } from "../../domain/ports/MessagesRepo.js"
import { UserId } from "../../domain/users/Model.js"
import { isUniqueViolation } from "./Errors.js"

/** A `messages` row as the driver returns it (camelCased): the table's constraints vouch for its shape. */
interface MessageRow {
  readonly id: MessageId
  readonly conversationId: ConversationId
  readonly seq: Seq
  readonly senderId: UserId | null
  readonly receiverId: UserId | null
  readonly content: string
  readonly type: MessageType
  readonly isRead: boolean
  readonly readAt: Date | null
  readonly fileUrl: string | null
  readonly fileName: string | null
  readonly clientMessageId: string | null
  readonly createdAt: Date
  readonly updatedAt: Date
}

/**
 * Rows of the hot paths (appends, history pages) become messages without a
 * generic decode, which would cost about as much as the query itself.
 */
const fromRow = (row: MessageRow): Message =>
  new Message({
    ...row,
    readAt: row.readAt === null ? null : DateTime.unsafeFromDate(row.readAt),
    createdAt: DateTime.unsafeFromDate(row.createdAt),
    updatedAt: DateTime.unsafeFromDate(row.updatedAt)
  }, { disableValidation: true })

/** A `messages` row as history pages read it: column names as they are, timestamps as epoch milliseconds. */
interface WireRow {
  readonly id: string
  readonly conversation_id: string
  readonly seq: number
  readonly sender_id: string | null
  readonly receiver_id: string | null
  readonly content: string
  readonly type: string
  readonly is_read: boolean
  readonly read_at: number | null
  readonly file_url: string | null
  readonly file_name: string | null
  readonly client_message_id: string | null
  readonly created_at: number
  readonly updated_at: number
}

// Milliseconds cut off as the driver's Date cuts them, so the text equals `toISOString` of the decoded row.
const epochMs = (column: string) => `floor(extract(epoch FROM ${column}) * 1000)::float8 AS ${column}`
const wireColumns = [
  "id",
  "conversation_id",
  "seq",
  "sender_id",
  "receiver_id",
  "content",
  "type",
  "is_read",
  epochMs("read_at"),
  "file_url",
  "file_name",
  "client_message_id",
  epochMs("created_at"),
  epochMs("updated_at")
].join(", ")

const text = (value: string | null) => value === null ? "null" : JSON.stringify(value)
const iso = (ms: number | null) => ms === null ? "null" : `"${new Date(ms).toISOString()}"`

/**
 * The row as `JSON.stringify(encodeMessage(message))` writes it (same keys, same order), without
 * making a Message on the way: ids and the type are plain ASCII; free text goes through JSON.stringify.
 */
const wireJson = (r: WireRow): string => {
  const created = iso(r.created_at)
  return `{"id":"${r.id}","conversationId":"${r.conversation_id}","seq":${r.seq},"senderId":${text(r.sender_id)},` +
    `"receiverId":${text(r.receiver_id)},"content":${JSON.stringify(r.content)},"type":"${r.type}",` +
    `"isRead":${r.is_read},"readAt":${iso(r.read_at)},"fileUrl":${text(r.file_url)},"fileName":${text(r.file_name)},` +
    `"clientMessageId":${text(r.client_message_id)},"createdAt":${created},` +
    `"updatedAt":${r.updated_at === r.created_at ? created : iso(r.updated_at)}}`
}

export const layer = Layer.scoped(
  MessagesRepo,
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    // History pages skip the driver's name transform: their rows are read by column name.
    const raw = sql.withoutTransforms()
    const asWire = raw.literal(wireColumns)

    /**
     * One statement, one round trip (system messages, written by the server, go in whatever the status): the conversation row is locked and its
     * counter bumped, so concurrent sends are numbered 1, 2, 3, … in commit
     * order; if the insert fails (a concurrent retry of the same
     * clientMessageId), the whole statement rolls back and no seq is used.
     */
    const insert = (m: NewMessage) =>
      sql<MessageRow>`
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
            : Effect.succeed<Appended>({ _tag: "Created", message: fromRow(rows[0]!) })
        ),
        Effect.catchIf(isUniqueViolation("messages_client_id_key"), () => original(m))
      )

    const findById = SqlSchema.findOne({
      Request: MessageId,
      Result: Message,
      execute: (id) => sql`SELECT * FROM messages WHERE id = ${id}`
    })

    const pageRows = <Row extends object>(
      client: SqlClient.SqlClient,
      conversationId: ConversationId,
      query: HistoryQuery,
      columns: Statement.Fragment
    ) => {
      const bounds = client.and([
        client`conversation_id = ${conversationId}`,
        ...(query.afterSeq === undefined ? [] : [client`seq > ${query.afterSeq}`]),
        ...(query.beforeSeq === undefined ? [] : [client`seq < ${query.beforeSeq}`])
      ])
      // Catching up reads forward from afterSeq; otherwise the newest page (before beforeSeq) is wanted.
      const order = query.afterSeq === undefined ? client`ORDER BY seq DESC` : client`ORDER BY seq ASC`
      return client<Row>`SELECT ${columns} FROM messages WHERE ${bounds} ${order} LIMIT ${query.limit + 1}`.pipe(
        Effect.map((rows) => {
          const hasMore = rows.length > query.limit
          const kept = rows.slice(0, query.limit)
          return { rows: query.afterSeq === undefined ? kept.reverse() : kept, hasMore }
        })
      )
    }

    const page = (conversationId: ConversationId, query: HistoryQuery) =>
      Effect.map(pageRows<MessageRow>(sql, conversationId, query, sql.literal("*")), ({ hasMore, rows }) => ({
        messages: rows.map(fromRow),
        hasMore
      }))

    const pageJson = (conversationId: ConversationId, query: HistoryQuery) =>
      Effect.map(pageRows<WireRow>(raw, conversationId, query, asWire), ({ hasMore, rows }) => ({
        messages: rows.map(wireJson),
        hasMore
      }))

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


    /**
     * Many appends, one statement: conversations are locked in id order (no
     * deadlock between batches), each gets its next seqs in arrival order, and
     * one row per conversation carries the new preview and unread counts.
     * Appends that were already stored (a retried clientMessageId) or whose
     * conversation is not active are left out and resolved one by one.
     */
    const insertMany = (batch: ReadonlyArray<NewMessage>) => {
      const column = <A>(f: (m: NewMessage) => A) => batch.map(f)
      return sql<MessageRow & { readonly ord: number }>`
        WITH input AS (
          SELECT t.* FROM unnest(
            ${batch.map((_, i) => i)}::int[], ${column((m) => m.conversationId)}::uuid[],
            ${column((m) => m.senderId)}::uuid[], ${column((m) => m.receiverId)}::uuid[],
            ${column((m) => m.content)}::text[], ${column((m) => m.type)}::text[],
            ${column((m) => m.clientMessageId)}::text[], ${column((m) => m.fileUrl)}::text[],
            ${column((m) => m.fileName)}::text[], ${column((m) => previewOf(m.content))}::text[]
          ) AS t(ord, conversation_id, sender_id, receiver_id, content, type, client_message_id, file_url, file_name,
                 preview)
          WHERE t.client_message_id IS NULL OR NOT EXISTS (
            SELECT 1 FROM messages d
            WHERE d.conversation_id = t.conversation_id AND d.sender_id = t.sender_id
              AND d.client_message_id = t.client_message_id
          )
        ), locked AS MATERIALIZED (
          SELECT c.id, c.last_seq, c.user_id, c.trainer_id FROM conversations c
          WHERE c.id IN (SELECT conversation_id FROM input) AND c.status = 'active'
          ORDER BY c.id
          FOR UPDATE
        ), numbered AS (
          SELECT i.*, l.user_id, l.trainer_id,
                 (l.last_seq + row_number() OVER (PARTITION BY i.conversation_id ORDER BY i.ord))::int AS seq
          FROM input i JOIN locked l ON l.id = i.conversation_id
        ), totals AS (
          SELECT conversation_id, max(seq) AS last_seq, (array_agg(preview ORDER BY seq DESC))[1] AS preview,
                 count(*) FILTER (WHERE receiver_id = user_id)::int AS to_user,
                 count(*) FILTER (WHERE receiver_id = trainer_id)::int AS to_trainer
          FROM numbered GROUP BY conversation_id
        ), conv AS (
          UPDATE conversations c SET
            last_seq = t.last_seq, last_message_at = now(), last_message_preview = t.preview,
            user_unread = c.user_unread + t.to_user, trainer_unread = c.trainer_unread + t.to_trainer,
            updated_at = now()
          FROM totals t WHERE c.id = t.conversation_id
        ), ins AS (
          INSERT INTO messages (conversation_id, seq, sender_id, receiver_id, content, type, client_message_id,
                                file_url, file_name, created_at, updated_at)
          SELECT conversation_id, seq, sender_id, receiver_id, content, type::message_type, client_message_id,
                 file_url, file_name, now(), now()
          FROM numbered
          RETURNING *
        )
        SELECT ins.*, n.ord FROM ins JOIN numbered n ON n.conversation_id = ins.conversation_id AND n.seq = ins.seq`
    }

    const appendMany = (batch: ReadonlyArray<NewMessage>): Effect.Effect<ReadonlyArray<Appended>, unknown> =>
      insertMany(batch).pipe(
        Effect.flatMap((rows) => {
          const stored = new Map(rows.map(({ ord, ...row }) => [Number(ord), fromRow(row)]))
          return Effect.forEach(batch, (m, i) => {
            const message = stored.get(i)
            return message === undefined ? original(m) : Effect.succeed<Appended>({ _tag: "Created", message })
          })
        }),
        // A concurrent retry of the same clientMessageId elsewhere (or a deadlock, or a bug): one by one.
        Effect.catchAll((error) =>
          Effect.zipRight(
            isUniqueViolation("messages_client_id_key")(error)
              ? Effect.logDebug("Batched append met a concurrent retry; appending one by one")
              : Effect.logWarning("Batched append failed; appending one by one", error),
            Effect.forEach(batch, append)
          )
        )
      )

    const { batchSize, batchWorkers } = yield* Config.all({
      batchSize: Config.integer("DB_APPEND_BATCH_MAX").pipe(Config.withDefault(256)),
      batchWorkers: Config.integer("DB_APPEND_WORKERS").pipe(Config.withDefault(4))
    })

    interface Pending {
      readonly message: NewMessage
      readonly done: Deferred.Deferred<Appended, unknown>
    }
    const queue = yield* Effect.acquireRelease(Queue.unbounded<Pending>(), Queue.shutdown)

    const keyOf = (m: NewMessage) =>
      m.clientMessageId === null ? undefined : `${m.conversationId}/${m.senderId}/${m.clientMessageId}`

    /** Takes what has arrived (at least one), appends it in one statement, answers each caller. */
    const worker = Effect.gen(function*() {
      const taken = Chunk.toReadonlyArray(yield* Queue.takeBetween(queue, 1, batchSize))
      // The same retry twice in one batch: the first is stored, the second gets the first's answer.
      const firstByKey = new Map<string, number>()
      const unique: Array<Pending> = []
      const sameAs = taken.map((pending) => {
        const key = keyOf(pending.message)
        const first = key === undefined ? undefined : firstByKey.get(key)
        if (first !== undefined) return first
        if (key !== undefined) firstByKey.set(key, unique.length)
        unique.push(pending)
        return undefined
      })
      const messages = unique.map((p) => p.message)
    const results = yield* Effect.exit(messages.length === 1 ? Effect.map(append(messages[0]!), (r) => [r]) : appendMany(messages))
      yield* Effect.forEach(unique, (pending, i) =>
        Deferred.complete(pending.done, Effect.map(results, (all) => all[i]!)))
      yield* Effect.forEach(taken, (pending, i) => {
        const first = sameAs[i]
        if (first === undefined) return Effect.void
        return Deferred.complete(
          pending.done,
          Effect.map(results, (all): Appended => {
            const original = all[first]!
            return original._tag === "Created" ? { _tag: "Duplicate", message: original.message } : original
          })
        )
      })
    })
    yield* Effect.forkScoped(Effect.forever(worker)).pipe(Effect.replicateEffect(batchWorkers))

    const enqueue = (message: NewMessage) =>
      Effect.flatMap(Deferred.make<Appended, unknown>(), (done) =>
        Effect.zipRight(Queue.offer(queue, { message, done }), Deferred.await(done)))

    return MessagesRepo.of({
      append: (message) => Effect.orDie(enqueue(message)),
      appendInTransaction: (message) =>
        append(message).pipe(Effect.orDie, Effect.withSpan("MessagesRepo.appendInTransaction")),
      findById: (id) => Effect.orDie(findById(id)),
      history: (conversationId, query) => Effect.orDie(page(conversationId, query)),
      historyJson: (conversationId, query) => Effect.orDie(pageJson(conversationId, query)),
      markRead: (id, receiverId) => markRead({ id, receiverId }).pipe(Effect.orDie, Effect.withSpan("MessagesRepo.markRead"))
    })
  })
)
