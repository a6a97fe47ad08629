import { Schema } from "effect"
import { UserId } from "../users/Model.js"
import { ConversationId, MessageId, MessageJson, Seq } from "./Model.js"

/**
 * What goes on the bus: facts that were committed (messages, receipts,
 * status changes) and ephemeral signals (typing, joins). Every instance
 * turns them into frames for its own sockets.
 */

/**
 * The W3C `traceparent` of the span that published the event: only with tracing on and that span sampled (see
 * `infra/telemetry/Tracing.ts`), so that a delivery on any instance is part of its publisher's trace.
 */
const traced = { traceparent: Schema.optional(Schema.String) }

/** Also published again for a retried send (its first publisher may have died before publishing): subscribers deliver each seq once. */
export const MessageCreated = Schema.TaggedStruct("MessageCreated", { message: MessageJson, ...traced })

export const MessagesRead = Schema.TaggedStruct("MessagesRead", {
  conversationId: ConversationId,
  readerId: UserId,
  /** Whose messages were read: the reader's counterpart. */
  senderId: UserId,
  /** One message marked read, or everything up to `upToSeq`. */
  messageId: Schema.NullOr(MessageId),
  upToSeq: Schema.NullOr(Seq),
  readAt: Schema.DateTimeUtc,
  ...traced
})

export const ConversationClosed = Schema.TaggedStruct("ConversationClosed", {
  conversationId: ConversationId,
  userId: UserId,
  trainerId: UserId,
  reason: Schema.NullOr(Schema.String),
  ...traced
})

export const ConversationArchived = Schema.TaggedStruct("ConversationArchived", {
  conversationId: ConversationId,
  userId: UserId,
  trainerId: UserId,
  ...traced
})

/** Signals from one participant to the other (`recipientId`), never stored. */
export const UserTyping = Schema.TaggedStruct("UserTyping", {
  conversationId: ConversationId,
  userId: UserId,
  recipientId: UserId,
  isTyping: Schema.Boolean,
  ...traced
})

export const UserJoined = Schema.TaggedStruct("UserJoined", {
  conversationId: ConversationId,
  userId: UserId,
  recipientId: UserId,
  ...traced
})
export const UserLeft = Schema.TaggedStruct("UserLeft", {
  conversationId: ConversationId,
  userId: UserId,
  recipientId: UserId,
  ...traced
})

/** A user came online or went offline (everywhere); told to the people they talk with. */
export const PresenceChanged = Schema.TaggedStruct("PresenceChanged", {
  userId: UserId,
  online: Schema.Boolean,
  lastSeenAt: Schema.NullOr(Schema.DateTimeUtc),
  recipientIds: Schema.Array(UserId),
  ...traced
})

/** A user's record changed (profile, assignment, active flag): instances forget what they cached of it. */
export const UserChanged = Schema.TaggedStruct("UserChanged", { userId: UserId, ...traced })

/** The user can no longer be signed in (deactivated): their sockets close. */
export const UserRevoked = Schema.TaggedStruct("UserRevoked", {
  userId: UserId,
  /** Deactivated, or signed out everywhere by a password change. */
  reason: Schema.Literal("deactivated", "credentials"),
  ...traced
})

/** One device session ended (signed out, revoked, its refresh token reused): its sockets close. */
export const SessionRevoked = Schema.TaggedStruct("SessionRevoked", { userId: UserId, sessionId: Schema.String, ...traced })

export const ChatEvent = Schema.Union(
  MessageCreated,
  MessagesRead,
  ConversationClosed,
  ConversationArchived,
  UserTyping,
  UserJoined,
  UserLeft,
  PresenceChanged,
  UserChanged,
  UserRevoked,
  SessionRevoked
)
export type ChatEvent = typeof ChatEvent.Type
