import { Model } from "@effect/sql"
import { Schema } from "effect"
import { ConversationId, MessageId } from "../chat/Model.js"
import { UserId } from "../users/Model.js"

export const AttachmentId = Schema.UUID.pipe(
  Schema.brand("AttachmentId"),
  Schema.annotations({ message: () => "must be a UUID" })
)
export type AttachmentId = typeof AttachmentId.Type

export const AttachmentKind = Schema.Literal("image", "document")
export type AttachmentKind = typeof AttachmentKind.Type

/** An uploaded file: unattached until a message of its uploader references it, then that message's for good. */
export class Attachment extends Model.Class<Attachment>("Attachment")({
  id: AttachmentId,
  uploaderId: UserId,
  kind: AttachmentKind,
  mimeType: Schema.String,
  fileName: Schema.String,
  size: Schema.Int,
  storageKey: Schema.String,
  thumbnailKey: Schema.NullOr(Schema.String),
  messageId: Schema.NullOr(MessageId),
  conversationId: Schema.NullOr(ConversationId),
  createdAt: Model.DateTimeInsertFromDate
}) {}

/** Where a client downloads an attachment (relative to the API's base URL). */
export const urlOf = (id: AttachmentId) => `/chat/attachments/${id}`
