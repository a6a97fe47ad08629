import type { SendError, Sent } from "../../domain/chat/Messages.js"
import { frameAround, type Handler } from "../Socket.js"
import type { EventContext } from "./Context.js"

/** `sendMessage { conversationId, content, type?, clientMessageId?, attachmentId? }`: acked once committed. */
export const sendMessage = ({ fanOut, sessions, work }: EventContext): Handler<"sendMessage"> => (ws, id, input) => {
  const data = ws.getUserData()
  const wait = data.sends.take()
  if (wait > 0) return sessions.sendError(ws, id, "RateLimited", "Too many messages: slow down", wait)
  work.submit<Sent, SendError>(
    ws,
    id,
    (done) =>
      data.live.submit({
        conversationId: input.conversationId,
        type: input.type ?? "text",
        content: input.content,
        attachmentId: input.attachmentId,
        clientMessageId: input.clientMessageId
      }, done),
    ({ message }) => {
      // Acked only now: the message is committed. A retry gets the same ack (announced again, it reaches no one twice).
      if (id !== undefined) sessions.send(ws, frameAround("ack", `{"message":${fanOut.jsonOf(message)}}`, id))
    }
  )
}
