import { Model } from "@effect/sql"
import { Schema } from "effect"
import { NullableDateTime, WellFormed } from "../Fields.js"
import { UserId } from "../users/Model.js"

export const ConversationId = Schema.UUID.pipe(
  Schema.brand("ConversationId"),
  Schema.annotations({ message: () => "must be a UUID" })
)
export type ConversationId = typeof ConversationId.Type

export const MessageId = Schema.UUID.pipe(
  Schema.brand("MessageId"),
  Schema.annotations({ message: () => "must be a UUID" })
)
export type MessageId = typeof MessageId.Type

/** The largest seq a Postgres `integer` column holds. */
export const MaxSeq = 2_147_483_647

/**
 * A message's place in its conversation: 1, 2, 3, … with no gap and no duplicate. Bounded like its
 * column, so that a larger one sent by a client is refused as invalid rather than failing in SQL.
 */
export const Seq = Schema.Int.pipe(
  Schema.between(0, MaxSeq),
  Schema.brand("Seq"),
  Schema.annotations({ message: () => `must be an integer from 0 to ${MaxSeq}` })
)
export type Seq = typeof Seq.Type

export const ConversationStatus = Schema.Literal("active", "archived", "closed").annotations({
  identifier: "ConversationStatus",
  message: () => "must be one of active, archived, closed"
})
export type ConversationStatus = typeof ConversationStatus.Type

export const MessageType = Schema.Literal("text", "image", "file", "system").annotations({
  identifier: "MessageType"
})
export type MessageType = typeof MessageType.Type

/** What a client may send: `system` messages are written by the server only. */
export const SendableType = Schema.Literal("text", "image", "file").annotations({
  message: () => "must be text, image or file"
})
export type SendableType = typeof SendableType.Type

/**
 * The rule REST and WebSocket sends both check: a text message has content and no attachment; an
 * image or file message references an uploaded attachment, and its content (a caption) is optional.
 */
export const checkSendShape = (input: {
  readonly type?: SendableType | undefined
  readonly content?: string | undefined
  readonly attachmentId?: string | undefined
}): true | { readonly path: ReadonlyArray<string>; readonly message: string } => {
  const type = input.type ?? "text"
  if (type === "text") {
    if (input.attachmentId !== undefined) {
      return { path: ["attachmentId"], message: "a text message has no attachment (send type image or file)" }
    }
    return input.content === undefined ? { path: ["content"], message: "is missing (a text message needs content)" } : true
  }
  return input.attachmentId === undefined
    ? {
      path: ["attachmentId"],
      message: `is missing (a ${type} message needs an attachment: upload it first with POST /chat/attachments)`
    }
    : true
}

/** Trimmed, lone surrogates replaced; 1 to 4000 characters. */
export const Content = Schema.Trim.pipe(
  Schema.compose(WellFormed),
  Schema.compose(
    Schema.String.pipe(
      // No NUL: Postgres text cannot hold one.
      Schema.filter((s) => s.length >= 1 && s.length <= 4000 && !s.includes("\0"), {
        message: () => "must be 1 to 4000 characters after trimming, without NUL"
      })
    )
  )
)

/** The client's own id for a send, so that a retry is recognised. */
export const ClientMessageId = WellFormed.pipe(
  Schema.filter((s) => s.length >= 1 && s.length <= 64 && !s.includes("\0"), {
    message: () => "must be 1 to 64 characters, without NUL"
  })
)

export class Conversation extends Model.Class<Conversation>("Conversation")({
  id: Model.Generated(ConversationId),
  userId: UserId,
  trainerId: UserId,
  status: ConversationStatus,
  lastSeq: Seq,
  lastMessageAt: NullableDateTime,
  lastMessagePreview: Schema.NullOr(Schema.String),
  userReadSeq: Model.Sensitive(Seq),
  trainerReadSeq: Model.Sensitive(Seq),
  userUnread: Model.Sensitive(Schema.Int),
  trainerUnread: Model.Sensitive(Schema.Int),
  closedReason: Schema.NullOr(Schema.String),
  createdAt: Model.DateTimeInsertFromDate,
  updatedAt: Model.DateTimeUpdateFromDate
}) {}

export class Message extends Model.Class<Message>("Message")({
  id: Model.Generated(MessageId),
  conversationId: ConversationId,
  seq: Seq,
  senderId: Schema.NullOr(UserId),
  receiverId: Schema.NullOr(UserId),
  content: Schema.String,
  type: MessageType,
  isRead: Schema.Boolean,
  readAt: NullableDateTime,
  fileUrl: Schema.NullOr(Schema.String),
  fileName: Schema.NullOr(Schema.String),
  clientMessageId: Schema.NullOr(Schema.String),
  createdAt: Model.DateTimeInsertFromDate,
  updatedAt: Model.DateTimeUpdateFromDate
}) {}

/**
 * A message from fields already checked (rows the log's constraints vouch for): what `new Message(fields,
 * { disableValidation: true })` makes — same prototype, same own fields — without the class constructor's
 * copies of the fields (a third of the cost of turning an appended row into a message). Every field is given,
 * so no default is missing. A test keeps the two equal.
 */
export const unsafeMessage = (fields: { readonly [K in keyof Message]: Message[K] }): Message =>
  Object.assign(Object.create(Message.prototype) as Message, fields)

export const MessageJson = Message.json
export type MessageJson = typeof MessageJson.Type

/** Who is who in a conversation: fixed at creation, so safe to cache. */
export interface Participants {
  readonly userId: UserId
  readonly trainerId: UserId
}

export const counterpartOf = (participants: Participants, actorId: UserId): UserId =>
  participants.userId === actorId ? participants.trainerId : participants.userId

export const isParticipant = (participants: Participants, actorId: UserId): boolean =>
  participants.userId === actorId || participants.trainerId === actorId

/** At most this many characters of a message go into its conversation's preview. */
export const previewOf = (content: string) => content.length <= 120 ? content : `${content.slice(0, 119)}…`
