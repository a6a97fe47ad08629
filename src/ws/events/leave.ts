import type { Handler } from "../Socket.js"
import type { EventContext } from "./Context.js"

/** `leaveConversation { conversationId }`: no more live messages; the counterpart hears it left. */
export const leave = ({ sessions, work }: EventContext): Handler<"leaveConversation"> => (ws, id, { conversationId }) => {
  const data = ws.getUserData()
  work.handle(ws, id, data.live.leave(conversationId), ({ left }) => {
    if (data.joined.delete(conversationId)) sessions.unsubscribe(ws, conversationId)
    sessions.ack(ws, id, { conversationId, left })
  })
}
