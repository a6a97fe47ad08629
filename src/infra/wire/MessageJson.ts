import { DateTime } from "effect"
import type { MessageJson } from "../../domain/chat/Model.js"

// Messages on the wire (REST bodies, WebSocket frames, the Redis bus): the hot paths' own encoders, kept
// equal to the contract's schema (`MessageJson`) by test.

/**
 * `Schema.encodeSync(MessageJson)`, written out: messages are encoded on every
 * send and in every history page and frame, where the generic encoder costs
 * more than everything else put together. A test keeps the two equal.
 */
export const encodeMessage = (m: MessageJson): typeof MessageJson.Encoded => {
  const createdAt = DateTime.formatIso(m.createdAt)
  return {
    id: m.id,
    conversationId: m.conversationId,
    seq: m.seq,
    senderId: m.senderId,
    receiverId: m.receiverId,
    content: m.content,
    type: m.type,
    isRead: m.isRead,
    readAt: m.readAt === null ? null : DateTime.formatIso(m.readAt),
    fileUrl: m.fileUrl,
    fileName: m.fileName,
    clientMessageId: m.clientMessageId,
    createdAt,
    // Equal for all but edited messages: written once.
    updatedAt: m.updatedAt.epochMillis === m.createdAt.epochMillis ? createdAt : DateTime.formatIso(m.updatedAt)
  }
}

/** A history page's JSON, from messages already in their JSON text: what `JSON.stringify` would write. */
export const historyPageJson = (page: PageJson) =>
  `{"messages":[${page.messages.join(",")}],"hasMore":${page.hasMore}}`

/** A history page with each message already in its wire form. */
export interface PageJson {
  /** Ascending by seq; each one a JSON object as `JSON.stringify(encodeMessage(message))` writes it. */
  readonly messages: ReadonlyArray<string>
  readonly hasMore: boolean
}
