/**
 * The WebSocket wire protocol: JSON text frames `{ event, data, id? }`.
 * These schemas are the contract for TypeScript clients too.
 *
 * Every client frame with an `id` gets exactly one reply: `ack` or `error`
 * with the same `id`. Errors without an `id` come as `{ event: "error", data }`.
 */
import type { ParseResult } from "effect"
import { Schema } from "effect"
import * as Issues from "../domain/Issues.js"
import { AttachmentId } from "../domain/attachments/Model.js"
import {
  checkSendShape,
  ClientMessageId,
  Content,
  ConversationId,
  ConversationStatus,
  MessageId,
  MessageJson,
  SendableType,
  Seq
} from "../domain/chat/Model.js"
import { UserId } from "../domain/users/Model.js"

const strict = { parseOptions: { onExcessProperty: "error", errors: "all" } } as const
const Struct = <Fields extends Schema.Struct.Fields>(fields: Fields) => Schema.Struct(fields).annotations(strict)
const optional = <S extends Schema.Schema.All>(schema: S) => Schema.optionalWith(schema, { exact: true })

/** How deep a frame's JSON may nest (the envelope is level 1): deeper frames are refused before decoding. */
export const MaxDepth = 64

/**
 * Whether `value` nests deeper than `max` levels of objects and arrays: one iterative walk (no recursion, so
 * no stack to overflow), which stops at the first level too deep.
 */
export const nestsDeeperThan = (value: unknown, max: number): boolean => {
  if (typeof value !== "object" || value === null) return false
  const values: Array<object> = [value]
  const depths: Array<number> = [1]
  while (values.length > 0) {
    const current = values.pop()!
    const depth = depths.pop()!
    if (depth > max) return true
    const children: ReadonlyArray<unknown> = Array.isArray(current) ? current : Object.values(current)
    for (const child of children) {
      if (typeof child === "object" && child !== null) {
        values.push(child)
        depths.push(depth + 1)
      }
    }
  }
  return false
}

/**
 * A decode failure as a client reads it: each issue's path and rule, never the value received; frames are
 * small and fixed, so a key that is not in the schema is not named either (it was received too).
 */
export const issuesOf = (error: ParseResult.ParseError): string => Issues.summaryOf(Issues.issuesOf(error, "hidden"))

/** A client's correlation id for a frame. */
export const FrameId = Schema.String.pipe(
  Schema.filter((s) => s.length >= 1 && s.length <= 64, { message: () => "id must be 1 to 64 characters" })
)

/** The envelope every client frame must have; `data` is checked per event. */
export const ClientEnvelope = Schema.Struct({
  event: Schema.String,
  data: optional(Schema.Unknown),
  id: optional(FrameId)
}).annotations(strict)

// Client → server

export const JoinConversation = Struct({ conversationId: ConversationId, sinceSeq: optional(Seq) })
export const LeaveConversation = Struct({ conversationId: ConversationId })
export const SendMessage = Struct({
  conversationId: ConversationId,
  content: optional(Content),
  type: optional(SendableType),
  attachmentId: optional(AttachmentId),
  /** Optional, as over REST (the original's clients send none): the server makes one. */
  clientMessageId: optional(ClientMessageId)
}).pipe(Schema.filter(checkSendShape))
export const Typing = Struct({ conversationId: ConversationId, isTyping: Schema.Boolean })
export const MarkAsRead = Schema.Union(
  Struct({ messageId: MessageId }),
  Struct({ conversationId: ConversationId, upToSeq: optional(Seq) })
)

// Every frame is checked: the envelope and the common send are also checked by hand, returning exactly what
// the schema would (a test keeps them equal). Anything else, every failure included, goes to the schema,
// which says what is wrong.

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)
const uuid = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/i
const onlyKeys = (u: Record<string, unknown>, allowed: ReadonlyArray<string>) => {
  for (const key in u) if (!allowed.includes(key)) return false
  return true
}

/** A well-formed envelope as `ClientEnvelope` decodes it; undefined for the schema to look at. */
export const envelopeFast = (u: unknown): typeof ClientEnvelope.Type | undefined => {
  if (!isRecord(u) || !onlyKeys(u, ["event", "data", "id"])) return undefined
  const { data, event, id } = u
  if (typeof event !== "string") return undefined
  if (id !== undefined && (typeof id !== "string" || id.length < 1 || id.length > 64)) return undefined
  return { event, ...("data" in u ? { data } : {}), ...(id === undefined ? {} : { id }) }
}

/** A text `sendMessage` (content, clientMessageId?) as `SendMessage` decodes it; undefined for the schema. */
export const sendMessageFast = (u: unknown): typeof SendMessage.Type | undefined => {
  if (!isRecord(u) || !onlyKeys(u, ["conversationId", "content", "type", "clientMessageId"])) return undefined
  const { clientMessageId, content, conversationId, type } = u
  if (typeof conversationId !== "string" || !uuid.test(conversationId)) return undefined
  if ((type !== undefined && type !== "text") || typeof content !== "string") return undefined
  const trimmed = content.trim()
  if (trimmed.length < 1 || trimmed.length > 4000 || trimmed.includes("\0")) return undefined
  if (clientMessageId === undefined) {
    if ("clientMessageId" in u) return undefined
  } else if (
    typeof clientMessageId !== "string" || clientMessageId.length < 1 || clientMessageId.length > 64 ||
    clientMessageId.includes("\0")
  ) return undefined
  return {
    conversationId: ConversationId.make(conversationId, { disableValidation: true }),
    content: trimmed,
    ...(type === undefined ? {} : { type }),
    ...(clientMessageId === undefined ? {} : { clientMessageId })
  }
}

export const ClientEvents = {
  joinConversation: JoinConversation,
  leaveConversation: LeaveConversation,
  sendMessage: SendMessage,
  typing: Typing,
  markAsRead: MarkAsRead
} as const
export type ClientEventName = keyof typeof ClientEvents

// Server → client

export const ErrorCode = Schema.Literal(
  "BadJson",
  "BadFrame",
  "UnknownEvent",
  "InvalidData",
  "FrameTooLarge",
  "RateLimited",
  "TooManyJoined",
  "TooManyConnections",
  "Overloaded",
  "ConversationNotFound",
  "ConversationClosed",
  "ConversationArchived",
  "MessageNotFound",
  "AttachmentNotFound",
  "AttachmentUnavailable",
  "Forbidden",
  "NotJoined",
  "ShuttingDown",
  "Unavailable",
  "Internal"
)
export type ErrorCode = typeof ErrorCode.Type

export const ErrorData = Schema.Struct({
  code: ErrorCode,
  message: Schema.String,
  retryAfterMs: optional(Schema.Int)
})
export type ErrorData = typeof ErrorData.Type

export const ServerEvents = {
  ack: Schema.Unknown,
  error: ErrorData,
  /** The latest page, or exactly what came after `sinceSeq` (ascending); page on while `hasMore`. */
  conversationHistory: Schema.Struct({
    conversationId: ConversationId,
    messages: Schema.Array(MessageJson),
    fromSeq: Schema.NullOr(Seq),
    toSeq: Schema.NullOr(Seq),
    hasMore: Schema.Boolean
  }),
  newMessage: MessageJson,
  newMessageNotification: Schema.Struct({ conversationId: ConversationId, message: MessageJson }),
  userJoined: Schema.Struct({ conversationId: ConversationId, userId: UserId }),
  userLeft: Schema.Struct({ conversationId: ConversationId, userId: UserId }),
  userTyping: Schema.Struct({ conversationId: ConversationId, userId: UserId, isTyping: Schema.Boolean }),
  messageRead: Schema.Struct({
    conversationId: ConversationId,
    readerId: UserId,
    messageId: Schema.NullOr(MessageId),
    upToSeq: Schema.NullOr(Seq),
    readAt: Schema.DateTimeUtc
  }),
  conversationClosed: Schema.Struct({
    conversationId: ConversationId,
    status: ConversationStatus,
    reason: Schema.NullOr(Schema.String)
  }),
  conversationArchived: Schema.Struct({ conversationId: ConversationId, status: ConversationStatus }),
  /** Someone you talk with came online or went offline (on every instance). */
  presence: Schema.Struct({ userId: UserId, online: Schema.Boolean, lastSeenAt: Schema.NullOr(Schema.DateTimeUtc) }),
  /** Events may have been missed (Redis was away): the conversation's log ends at `lastSeq`; rejoin with `sinceSeq`. */
  resync: Schema.Struct({ conversationId: ConversationId, lastSeq: Seq })
} as const
export type ServerEventName = keyof typeof ServerEvents

/** Close codes the server uses besides 1001 on shutdown. */
export const CloseCodes = {
  /** A frame above WS_MAX_PAYLOAD_BYTES (RFC 6455: message too big). */
  messageTooBig: 1009,
  /** The token expired while the socket was open: reconnect with a fresh one. */
  tokenExpired: 4001,
  /** The user was deactivated. */
  revoked: 4003,
  /** The user's password changed: every earlier token is void. Sign in again. */
  signedOut: 4004,
  /** This device's session ended (signed out here or from another device, or its refresh token was reused). */
  sessionEnded: 4005,
  /** Too many bad frames in a row. */
  abuse: 4008,
  /** The client reads too slowly: more than WS_MAX_BACKPRESSURE_BYTES waited for it. Reconnect and resume. */
  tooSlow: 4009
} as const

export const encodeServerEvent = <E extends ServerEventName>(
  event: E,
  data: Schema.Schema.Type<(typeof ServerEvents)[E]>,
  id?: string
): string => {
  const encoded = Schema.encodeSync(ServerEvents[event] as Schema.Schema<unknown, unknown>)(data)
  return JSON.stringify(id === undefined ? { event, data: encoded } : { event, id, data: encoded })
}
