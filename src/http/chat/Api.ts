import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as OpenApi from "@effect/platform/OpenApi"
import { Schema } from "effect"
import { AuditEntry } from "../../domain/audit/Model.js"
import { ConversationNotActive, ConversationNotFound, MessageNotFound, NotAssigned } from "../../domain/chat/Errors.js"
import { AttachmentNotFound, AttachmentUnavailable } from "../../domain/attachments/Errors.js"
import { AttachmentId } from "../../domain/attachments/Model.js"
import {
  checkSendShape,
  ClientMessageId,
  Content,
  Conversation,
  ConversationId,
  ConversationStatus,
  MaxSeq,
  MessageId,
  MessageJson,
  SendableType,
  Seq
} from "../../domain/chat/Model.js"
import { Forbidden, RateLimited } from "../../domain/Errors.js"
import { Role, UserId } from "../../domain/users/Model.js"
import { IntFromString, optional, Page, pageParams, strict, StrictStruct } from "../Schemas.js"
import { Authentication } from "../Security.js"

const SeqFromString = Schema.compose(IntFromString(0, MaxSeq), Seq)

/** What anyone in a conversation may know about the other side. */
export const PublicProfile = Schema.Struct({
  id: UserId,
  firstName: Schema.String,
  lastName: Schema.String,
  avatar: Schema.NullOr(Schema.String),
  role: Role
}).annotations({ identifier: "PublicProfile" })

export const ConversationJson = Conversation.json.annotations({ identifier: "Conversation" })

const conversationViewFields = {
  ...Conversation.json.fields,
  user: PublicProfile,
  trainer: PublicProfile,
  /** The other side, for a participant; null for an admin. */
  counterpart: Schema.NullOr(PublicProfile),
  /** Messages the caller received and has not read. */
  unreadCount: Schema.Int,
  /** The caller's read watermark: everything the caller received up to this seq is read. */
  readSeq: Seq,
  /** The counterpart's presence, in the conversation list (null elsewhere and for admins). */
  presence: Schema.NullOr(Schema.Struct({ online: Schema.Boolean, lastSeenAt: Schema.NullOr(Schema.DateTimeUtc) }))
}

/** A conversation as its caller sees it. */
export class ConversationView extends Schema.Class<ConversationView>("ConversationView")(conversationViewFields) {}

/** The same, answered with 201 when the request created it. */
export class ConversationCreated
  extends Schema.Class<ConversationCreated>("ConversationCreated")(conversationViewFields)
{}

export const ConversationPage = Page("ConversationPage", ConversationView)

/** A stored message, answered with 201 when this request stored it (a retry gets 200 and the original). */
export class MessageSent extends Schema.Class<MessageSent>("MessageSent")(MessageJson.fields) {}

export class MessageHistory extends Schema.Class<MessageHistory>("MessageHistory")({
  messages: Schema.Array(MessageJson),
  hasMore: Schema.Boolean
}) {}

export class ReadResult extends Schema.Class<ReadResult>("ReadResult")({
  changed: Schema.Int,
  readSeq: Seq
}) {}

export class UnreadCount extends Schema.Class<UnreadCount>("UnreadCount")({
  total: Schema.Int,
  byConversation: Schema.Array(Schema.Struct({ conversationId: ConversationId, count: Schema.Int }))
}) {}

export const OpenConversationPayload = Schema.Union(
  StrictStruct({ participantId: UserId }),
  StrictStruct({ userId: UserId, trainerId: UserId })
).annotations({ identifier: "OpenConversation", ...strict })

export class SendMessageFields extends Schema.Class<SendMessageFields>("SendMessagePayload")(StrictStruct({
  conversationId: ConversationId,
  content: optional(Content),
  type: Schema.optionalWith(SendableType, { default: () => "text" as const, exact: true }),
  attachmentId: optional(AttachmentId),
  clientMessageId: optional(ClientMessageId)
})) {}

/** A text message carries content; an image or file message an attachment and, optionally, a caption. */
export const SendMessagePayload = SendMessageFields.pipe(Schema.filter(checkSendShape))

export class MarkReadPayload extends Schema.Class<MarkReadPayload>("MarkReadPayload")(StrictStruct({
  upToSeq: optional(Seq)
})) {}

export const PageParams = Schema.Struct(pageParams).annotations(strict)

export const HistoryParams = Schema.Struct({
  beforeSeq: optional(SeqFromString),
  afterSeq: optional(SeqFromString),
  limit: Schema.optionalWith(IntFromString(1, 100), { default: () => 50 })
}).annotations(strict)

const id = HttpApiSchema.param("id", ConversationId)
const messageId = HttpApiSchema.param("id", MessageId)

export class ChatApi extends HttpApiGroup.make("chat")
  .add(
    HttpApiEndpoint.post("openConversation", "/conversations")
      .setPayload(OpenConversationPayload)
      .addSuccess(ConversationCreated, { status: 201 })
      .addSuccess(ConversationView)
      .addError(NotAssigned)
      .addError(Forbidden)
      .annotate(
        OpenApi.Summary,
        "Open (create or get) the conversation with one's assigned trainer or user; admins pass { userId, trainerId }"
      )
  )
  .add(
    HttpApiEndpoint.get("listConversations", "/conversations")
      .setUrlParams(PageParams)
      .addSuccess(ConversationPage)
      .annotate(OpenApi.Summary, "The caller's conversations, most recent first, with unread counts")
  )
  .add(
    HttpApiEndpoint.get("getConversation")`/conversations/${id}`
      .addSuccess(ConversationView)
      .addError(ConversationNotFound)
      .annotate(OpenApi.Summary, "One conversation (participants; admins, audited)")
  )
  .add(
    HttpApiEndpoint.get("history")`/conversations/${id}/messages`
      .setUrlParams(HistoryParams)
      .addSuccess(MessageHistory)
      .addError(ConversationNotFound)
      .annotate(
        OpenApi.Summary,
        "Messages by seq, ascending: the newest page, the page before beforeSeq, or what came after afterSeq"
      )
  )
  .add(
    HttpApiEndpoint.put("markConversationRead")`/conversations/${id}/read`
      .setPayload(MarkReadPayload)
      .addSuccess(ReadResult)
      .addError(ConversationNotFound)
      .addError(Forbidden)
      .annotate(OpenApi.Summary, "Mark what the caller received up to upToSeq (default: everything) read")
  )
  .add(
    HttpApiEndpoint.post("sendMessage", "/messages")
      .setPayload(SendMessagePayload)
      .addSuccess(MessageSent, { status: 201 })
      .addSuccess(MessageJson.annotations({ identifier: "Message" }))
      .addError(ConversationNotFound)
      .addError(ConversationNotActive)
      .addError(AttachmentNotFound)
      .addError(AttachmentUnavailable)
      .addError(Forbidden)
      .addError(RateLimited)
      .annotate(
        OpenApi.Summary,
        "Send a message (201); a retry with the same clientMessageId answers 200 with the original"
      )
  )
  .add(
    HttpApiEndpoint.put("markMessageRead")`/messages/${messageId}/read`
      .addSuccess(MessageJson)
      .addError(MessageNotFound)
      .addError(Forbidden)
      .annotate(OpenApi.Summary, "The receiver marks one message read (idempotent)")
  )
  .add(
    HttpApiEndpoint.get("unreadCount", "/messages/unread/count")
      .addSuccess(UnreadCount)
      .annotate(OpenApi.Summary, "The caller's unread messages, in all and per conversation")
  )
  .middleware(Authentication)
  .prefix("/chat")
  .annotate(OpenApi.Title, "Chat")
{}

export const AdminConversationParams = Schema.Struct({
  status: optional(ConversationStatus),
  userId: optional(UserId),
  trainerId: optional(UserId),
  ...pageParams
}).annotations(strict)

export const AdminConversationPage = Page("AdminConversationPage", ConversationJson)

export class ClosePayload extends Schema.Class<ClosePayload>("ClosePayload")(StrictStruct({
  reason: optional(
    Schema.Trim.pipe(Schema.compose(Schema.String.pipe(
      Schema.filter((s) => s.length >= 1 && s.length <= 500 && !s.includes("\0"), {
        message: () => "must be 1 to 500 characters, without NUL"
      })
    )))
  )
})) {}

export const AuditEntryJson = AuditEntry.json.annotations({ identifier: "AuditEntry" })

export const AuditPage = Page("AuditPage", AuditEntryJson)

export class ModerationApi extends HttpApiGroup.make("moderation")
  .add(
    HttpApiEndpoint.get("listConversations", "/conversations")
      .setUrlParams(AdminConversationParams)
      .addSuccess(AdminConversationPage)
      .addError(Forbidden)
      .annotate(OpenApi.Summary, "All conversations, filtered by status, user or trainer (admin; audited)")
  )
  .add(
    HttpApiEndpoint.put("closeConversation")`/conversations/${id}/close`
      .setPayload(ClosePayload)
      .addSuccess(ConversationJson)
      .addError(ConversationNotFound)
      .addError(Forbidden)
      .annotate(OpenApi.Summary, "Close a conversation for good, leaving a system message (admin; audited)")
  )
  .add(
    HttpApiEndpoint.get("audit", "/audit")
      .setUrlParams(PageParams)
      .addSuccess(AuditPage)
      .addError(Forbidden)
      .annotate(OpenApi.Summary, "The audit log of admin reads and closes, newest first (admin)")
  )
  .middleware(Authentication)
  .prefix("/chat/admin")
  .annotate(OpenApi.Title, "Moderation")
{}
