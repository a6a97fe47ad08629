import { SqlClient, SqlSchema } from "@effect/sql"
import { DateTime, Duration, Effect, Layer, Option, Schema } from "effect"
import {
  ConversationId,
  Message,
  MessageId,
  type MessageType,
  previewOf,
  type Seq,
  unsafeMessage
} from "../../domain/chat/Model.js"
import { type Appended, type HistoryQuery, MessagesRepo, type NewMessage } from "../../domain/ports/MessagesRepo.js"
import { PushConfig, PushEnabled } from "../../domain/push/Config.js"
import { UserId } from "../../domain/users/Model.js"
import { isUniqueViolation } from "./Errors.js"
import { pageRows } from "./HistoryRows.js"

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

/** What the append statement answers for each message it stored: the rest is what the caller sent. */
interface AppendedRow {
  readonly ord: number
  readonly id: MessageId
  readonly seq: Seq
  /** Epoch milliseconds: no date parsing per row. */
  readonly createdAt: number
}

const fromAppended = (m: NewMessage, row: AppendedRow): Message => {
  const at = DateTime.unsafeMake(row.createdAt)
  return unsafeMessage({
    id: row.id,
    conversationId: m.conversationId,
    seq: row.seq,
    senderId: m.senderId,
    receiverId: m.receiverId,
    content: m.content,
    type: m.type,
    isRead: false,
    readAt: null,
    fileUrl: m.fileUrl,
    fileName: m.fileName,
    clientMessageId: m.clientMessageId,
    createdAt: at,
    updatedAt: at
  })
}

// Named as AppendedRow: the statement skips the driver's name transform (a new object per row with every key
// converted, on the hottest statement).
const appendMessages = "SELECT ord, id, seq, created_at AS \"createdAt\" FROM append_messages_v3($1::int[], $2::uuid[], " +
  "$3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::int)"

/**
 * A Postgres array literal, every element quoted (NULL for null): the driver's own conversion escapes each
 * element with two regular expressions and builds the text piece by piece, which on this statement cost
 * more than the rest of the batch's parameters.
 */
export const arrayLiteral = (values: ReadonlyArray<string | null>): string => {
  let out = "{"
  for (let i = 0; i < values.length; i++) {
    const value = values[i]!
    if (i > 0) out += ","
    out += value === null
      ? "NULL"
      : value.includes("\\") || value.includes("\"")
      ? `"${value.replace(/[\\"]/g, "\\$&")}"`
      : `"${value}"`
  }
  return out + "}"
}

export const layer = Layer.scoped(
  MessagesRepo,
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    // The append statement skips the driver's name transform: its columns are named as MessageRow has them.
    const raw = sql.withoutTransforms()
    // The outbox is written by the append itself when a push provider is on: due after the delay; -1 is off.
    const pushDelayMs = (yield* PushEnabled) ? Duration.toMillis((yield* PushConfig).delay) : -1

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

    const findById = SqlSchema.findOne({
      Request: MessageId,
      Result: Message,
      execute: (id) => sql`SELECT * FROM messages WHERE id = ${id}`
    })

    const page = (conversationId: ConversationId, query: HistoryQuery) =>
      Effect.map(pageRows<MessageRow>(sql, conversationId, query, sql.literal("*")), ({ hasMore, rows }) => ({
        messages: rows.map(fromRow),
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
     * Many appends, one statement (`append_messages_v3`, migrations 0005-0008): each message gets its
     * conversation's next seq, in input order, with the preview and unread counts, or is left out
     * (a retried clientMessageId already stored, a conversation not active): those are resolved one
     * by one. If an insert fails (a concurrent retry of the same clientMessageId), nothing of the
     * statement is written and no seq is used.
     */
    const insertMany = (batch: ReadonlyArray<NewMessage>) => {
      const column = (f: (m: NewMessage) => string | null) => arrayLiteral(batch.map(f))
      // The hottest statement: its text is fixed and its arrays are written here, so the parameters go to
      // the driver as they are (a template would be compiled again for every batch).
      return raw.unsafe<AppendedRow>(appendMessages, [
        `{${batch.map((_, i) => i).join(",")}}`,
        column((m) => m.conversationId),
        column((m) => m.senderId),
        column((m) => m.receiverId),
        column((m) => m.content),
        column((m) => m.type),
        column((m) => m.clientMessageId),
        column((m) => m.fileUrl),
        column((m) => m.fileName),
        column((m) => previewOf(m.content)),
        pushDelayMs
      ])
    }

    /**
     * Each message's answer from the statement's rows: stored now, or left out (a retry of a message
     * already stored, a conversation not active or gone) and then resolved by `original`.
     */
    const answers = (batch: ReadonlyArray<NewMessage>, rows: ReadonlyArray<AppendedRow>) => {
      const out = new Array<Appended | undefined>(batch.length)
      for (const row of rows) out[row.ord] = { _tag: "Created", message: fromAppended(batch[row.ord]!, row) }
      if (rows.length === batch.length) return Effect.succeed(out as Array<Appended>)
      return Effect.forEach(batch, (m, i) => out[i] === undefined ? original(m) : Effect.succeed(out[i]!))
    }

    const append = (m: NewMessage): Effect.Effect<Appended, unknown> =>
      insertMany([m]).pipe(
        Effect.flatMap((rows) => answers([m], rows)),
        Effect.map((all) => all[0]!),
        Effect.catchIf(isUniqueViolation("messages_client_id_key"), () => original(m))
      )

    const appendMany = (batch: ReadonlyArray<NewMessage>): Effect.Effect<ReadonlyArray<Appended>, unknown> =>
      insertMany(batch).pipe(
        Effect.flatMap((rows) => answers(batch, rows)),
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

    return MessagesRepo.of({
      append: (message) => Effect.orDie(append(message)),
      appendMany: (batch) =>
        Effect.orDie(batch.length === 1 ? Effect.map(append(batch[0]!), (answer) => [answer]) : appendMany(batch)),
      appendInTransaction: (message) =>
        append(message).pipe(Effect.orDie, Effect.withSpan("MessagesRepo.appendInTransaction")),
      findById: (id) => Effect.orDie(findById(id)),
      history: (conversationId, query) => Effect.orDie(page(conversationId, query)),
      markRead: (id, receiverId) => markRead({ id, receiverId }).pipe(Effect.orDie, Effect.withSpan("MessagesRepo.markRead"))
    })
  })
)
