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

const text = (value: string | null) => value === null ? "null" : JSON.stringify(value)

/**
 * `JSON.stringify(encodeMessage(m))`, written out (same keys, same order, same escapes): ids, numbers, the
 * type and the times are plain ASCII; free text goes through JSON.stringify. Every message sent is written so
 * once, for its broadcast and its ack. A test keeps the two equal.
 */
export const messageJson = (m: MessageJson): string => {
  const createdAt = DateTime.formatIso(m.createdAt)
  const updatedAt = m.updatedAt.epochMillis === m.createdAt.epochMillis ? createdAt : DateTime.formatIso(m.updatedAt)
  return `{"id":"${m.id}","conversationId":"${m.conversationId}","seq":${m.seq},"senderId":${text(m.senderId)},` +
    `"receiverId":${text(m.receiverId)},"content":${JSON.stringify(m.content)},"type":"${m.type}",` +
    `"isRead":${m.isRead},"readAt":${m.readAt === null ? "null" : `"${DateTime.formatIso(m.readAt)}"`},` +
    `"fileUrl":${text(m.fileUrl)},"fileName":${text(m.fileName)},"clientMessageId":${text(m.clientMessageId)},` +
    `"createdAt":"${createdAt}","updatedAt":"${updatedAt}"}`
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
