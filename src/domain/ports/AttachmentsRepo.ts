import { Context, type DateTime, type Effect, type Option } from "effect"
import type { Attachment, AttachmentId } from "../attachments/Model.js"
import type { ConversationId, MessageId } from "../chat/Model.js"
import type { UserId } from "../users/Model.js"

export class AttachmentsRepo extends Context.Tag("Ports/AttachmentsRepo")<AttachmentsRepo, {
  readonly insert: (attachment: typeof Attachment.insert.Type) => Effect.Effect<Attachment>
  readonly findById: (id: AttachmentId) => Effect.Effect<Option.Option<Attachment>>
  /**
   * Makes an unattached upload of `uploaderId` the attachment of `messageId`, on the current
   * connection (inside the send's transaction); false when it is not (or no longer) available.
   */
  readonly link: (link: {
    readonly id: AttachmentId
    readonly uploaderId: UserId
    readonly messageId: MessageId
    readonly conversationId: ConversationId
  }) => Effect.Effect<boolean>
  /**
   * Removes up to `limit` uploads never attached and created before `olderThan`, returning them
   * so that their files can be removed too. Instances cleaning at once never take the same rows.
   */
  readonly takeOrphans: (olderThan: DateTime.Utc, limit: number) => Effect.Effect<ReadonlyArray<Attachment>>
}>() {}
