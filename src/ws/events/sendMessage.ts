import type { SendError, Sent } from "../../domain/chat/Messages.js"
import { transportOf } from "../Sessions.js"
import { frameAround, type Handler } from "../Socket.js"
import type { EventContext } from "./Context.js"

/** `sendMessage { conversationId, content, type?, clientMessageId?, attachmentId? }`: acked once committed. */
export const sendMessage = ({ fanOut, sessions, work }: EventContext): Handler<"sendMessage"> => (ws, id, input) => {
  const arrived = performance.now()
  const data = ws.getUserData()
  const wait = data.sends.take()
  if (wait > 0) return sessions.limited(ws, id, "ws:send", "Too many messages: slow down", wait)
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
      }, done, transportOf(ws)),
    ({ created, message }) => {
      // Acked only now: the message is committed. A retry gets the same ack (announced again, it reaches no one twice).
      if (id !== undefined) sessions.send(ws, frameAround("ack", `{"message":${fanOut.jsonOf(message)}}`, id))
      sessions.metrics.messageSent(transportOf(ws), (performance.now() - arrived) / 1000, created)
    }
  )
}
