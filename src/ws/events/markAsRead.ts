import type { Handler } from "../Socket.js"
import type { EventContext } from "./Context.js"

/** `markAsRead { messageId }` or `{ conversationId, upToSeq? }`: the sender hears of it. */
export const markAsRead = ({ sessions, work }: EventContext): Handler<"markAsRead"> => (ws, id, input) => {
  const data = ws.getUserData()
  const wait = data.reads.take()
  if (wait > 0) return sessions.limited(ws, id, "ws:read", "Too many read receipts: slow down", wait)
  if ("messageId" in input) {
    return work.handle(ws, id, data.live.markRead(input.messageId), (message) =>
      sessions.ack(ws, id, { messageId: message.id, isRead: message.isRead }))
  }
  work.handle(
    ws,
    id,
    data.live.markConversationRead(input.conversationId, input.upToSeq),
    (result) => sessions.ack(ws, id, { conversationId: input.conversationId, ...result })
  )
}
