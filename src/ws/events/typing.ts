import type { Handler } from "../Socket.js"
import type { EventContext } from "./Context.js"

/** `typing { conversationId, isTyping }`: relayed to the counterpart (throttled, expiring: see LiveSession). */
export const typing = ({ sessions, work }: EventContext): Handler<"typing"> => (ws, id, { conversationId, isTyping }) => {
  const data = ws.getUserData()
  const wait = data.typings.take()
  if (wait > 0) return sessions.limited(ws, id, "ws:typing", "Too many typing events", wait)
  work.handle(ws, id, data.live.typing(conversationId, isTyping), (state) =>
    sessions.ack(ws, id, { conversationId, ...state }))
}
