import { Effect, Exit } from "effect"
import type { MessageJson } from "../../domain/chat/Model.js"
import { encodeMessage } from "../../infra/wire/MessageJson.js"
import { frameOf, type Handler } from "../Socket.js"
import type { EventContext } from "./Context.js"

/**
 * `joinConversation { conversationId, sinceSeq? }`: the history page, then live messages. Live messages that
 * arrive while the history is read are held and sent after it, so the socket sees every message once, in order.
 */
export const join = ({ config, sessions, work }: EventContext): Handler<"joinConversation"> => (ws, id, input) => {
  const data = ws.getUserData()
  const { conversationId } = input
  const wait = data.joins.take()
  if (wait > 0) return sessions.limited(ws, id, "ws:join", "Too many joins: slow down", wait)
  if (
    !data.joined.has(conversationId) && !data.pending.has(conversationId) &&
    data.joined.size + data.pending.size >= config.maxJoinedPerSocket
  ) {
    return sessions.sendError(
      ws,
      id,
      "TooManyJoined",
      `A socket is in at most ${config.maxJoinedPerSocket} conversations at once: leave one first`
    )
  }
  if (data.joined.delete(conversationId)) {
    sessions.unsubscribe(ws, conversationId)
    data.live.paused(conversationId)
  }
  // Joins of one conversation in flight on this socket share the buffer; the last one to settle ends it.
  const pending = data.pending.get(conversationId) ?? { held: [] as Array<MessageJson>, joins: 0 }
  pending.joins++
  data.pending.set(conversationId, pending)
  const waiting = sessions.pendingByConversation.get(conversationId) ?? new Set()
  waiting.add(ws)
  sessions.pendingByConversation.set(conversationId, waiting)
  const settle = () => {
    if (--pending.joins === 0) {
      data.pending.delete(conversationId)
      waiting.delete(ws)
      if (waiting.size === 0) sessions.pendingByConversation.delete(conversationId)
    }
    return [...pending.held]
  }
  work.handle(
    ws,
    id,
    data.live.join(conversationId, input.sinceSeq).pipe(
      Effect.onExit((exit) => Exit.isFailure(exit) ? Effect.sync(settle) : Effect.void)
    ),
    ({ live, page, recipientId }) => {
      const held = settle()
      if (data.closed) return
      const last = page.messages.at(-1)
      const toSeq = last?.seq ?? null
      sessions.send(ws, frameOf("conversationHistory", {
        conversationId,
        messages: page.messages.map(encodeMessage),
        fromSeq: page.messages[0]?.seq ?? null,
        toSeq,
        hasMore: page.hasMore
      }))
      if (live && data.joined.has(conversationId)) {
        // Another join of this socket went live while this one was in flight: since then every message
        // after its history reached the socket (held ones, then the room's); sending the held ones again
        // would repeat them. Only the bound of what came with history moves.
        const after = Math.max(toSeq ?? 0, data.joinedAt.get(conversationId) ?? 0)
        data.joinedAt.set(conversationId, after)
      } else if (live) {
        const after = toSeq ?? input.sinceSeq ?? 0
        for (const message of held) if (message.seq > after) sessions.send(ws, frameOf("newMessage", encodeMessage(message)))
        // Live messages queue behind the history and the held ones: one socket's frames keep publish order.
        sessions.subscribe(ws, conversationId, after)
        data.live.wentLive(conversationId, recipientId)
      }
      sessions.ack(ws, id, { conversationId, joined: live, toSeq })
    },
    settle
  )
}
