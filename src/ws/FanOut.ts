import { Effect, Schedule } from "effect"
import type { ChatEvent } from "../domain/chat/Events.js"
import type { Messages } from "../domain/chat/Messages.js"
import type { ConversationId, MessageJson } from "../domain/chat/Model.js"
import { messageJson } from "../infra/wire/MessageJson.js"
import { InOrder } from "./InOrder.js"
import { CloseCodes, encodeServerEvent } from "./Protocol.js"
import type { Sessions } from "./Sessions.js"
import { frameAround } from "./Socket.js"

/**
 * Bus events → frames, for the sockets of this instance: each conversation's messages in `seq` order and
 * once (see InOrder), the rest to whom it concerns.
 */
export class FanOut {
  // A message's broadcast and then its sender's ack (acks of a batch come after the batch's broadcasts) carry
  // the same message object: its JSON is written once. The texts of one turn of the event loop, dropped at
  // its end: a long-lived table holding young messages made every one of them outlive the young generation.
  private texts: Map<MessageJson, string> | undefined
  // A gap that does not fill (its publisher died between commit and publish): the room is told to resync.
  private readonly inOrder = new InOrder<MessageJson>(
    (message) => this.deliverMessage(message),
    250,
    100_000,
    (conversationId) => this.resync([conversationId as ConversationId])
  )

  constructor(
    private readonly sessions: Sessions,
    private readonly messages: Messages,
    private readonly run: (effect: Effect.Effect<void>) => void,
    private readonly shuttingDown: () => boolean
  ) {}

  /** The message's JSON text (written once for its broadcast and its ack). */
  jsonOf(message: MessageJson): string {
    let texts = this.texts
    if (texts === undefined) {
      texts = this.texts = new Map()
      setImmediate(() => {
        this.texts = undefined
      })
    }
    let text = texts.get(message)
    if (text === undefined) {
      text = messageJson(message)
      texts.set(message, text)
    }
    return text
  }

  readonly deliver = (event: ChatEvent): void => {
    const sessions = this.sessions
    switch (event._tag) {
      case "MessageCreated":
        return this.inOrder.push(event.message)
      case "MessagesRead": {
        const frame = encodeServerEvent("messageRead", {
          conversationId: event.conversationId,
          readerId: event.readerId,
          messageId: event.messageId,
          upToSeq: event.upToSeq,
          readAt: event.readAt
        })
        for (const ws of sessions.socketsOf(event.senderId)) sessions.send(ws, frame)
        for (const ws of sessions.socketsOf(event.readerId)) sessions.send(ws, frame)
        return
      }
      case "ConversationClosed":
      case "ConversationArchived": {
        const frame = event._tag === "ConversationClosed"
          ? encodeServerEvent("conversationClosed", { conversationId: event.conversationId, status: "closed", reason: event.reason })
          : encodeServerEvent("conversationArchived", { conversationId: event.conversationId, status: "archived" })
        for (const userId of [event.userId, event.trainerId]) {
          for (const ws of sessions.socketsOf(userId)) {
            ws.getUserData().live.ended(event.conversationId)
            sessions.send(ws, frame)
          }
        }
        return
      }
      case "UserTyping":
      case "UserJoined":
      case "UserLeft": {
        const frame = event._tag === "UserTyping"
          ? encodeServerEvent("userTyping", { conversationId: event.conversationId, userId: event.userId, isTyping: event.isTyping })
          : encodeServerEvent(event._tag === "UserJoined" ? "userJoined" : "userLeft", {
            conversationId: event.conversationId,
            userId: event.userId
          })
        for (const ws of sessions.socketsOf(event.recipientId)) {
          if (ws.getUserData().joined.has(event.conversationId)) sessions.send(ws, frame)
        }
        return
      }
      case "PresenceChanged": {
        const frame = encodeServerEvent("presence", { userId: event.userId, online: event.online, lastSeenAt: event.lastSeenAt })
        for (const userId of event.recipientIds) for (const ws of sessions.socketsOf(userId)) sessions.send(ws, frame)
        return
      }
      case "SessionRevoked": {
        for (const ws of [...sessions.socketsOf(event.userId)]) {
          if (ws.getUserData().sessionId === event.sessionId) ws.end(CloseCodes.sessionEnded, "session ended: sign in again")
        }
        return
      }
      case "UserRevoked": {
        for (const ws of [...sessions.socketsOf(event.userId)]) {
          if (event.reason === "deactivated") ws.end(CloseCodes.revoked, "user deactivated")
          else ws.end(CloseCodes.signedOut, "password changed: sign in again")
        }
        return
      }
    }
  }

  private deliverMessage(message: MessageJson): void {
    const sessions = this.sessions
    const json = this.jsonOf(message)
    const frame = frameAround("newMessage", json)
    const room = sessions.rooms.get(message.conversationId)
    // Normally one publish to the room's topic; right after a join, a late message the joiner already got
    // with its history goes only to the others, one by one (rooms are a few sockets).
    let sentWithHistory = false
    for (const ws of room ?? []) {
      sessions.tooSlow(ws)
      if ((ws.getUserData().joinedAt.get(message.conversationId) ?? 0) >= message.seq) sentWithHistory = true
    }
    if (!sentWithHistory) sessions.broadcast(message.conversationId, frame)
    else {
      for (const ws of room ?? []) {
        if ((ws.getUserData().joinedAt.get(message.conversationId) ?? 0) < message.seq) sessions.send(ws, frame)
      }
    }
    for (const ws of sessions.pendingByConversation.get(message.conversationId) ?? []) {
      ws.getUserData().pending.get(message.conversationId)?.held.push(message)
    }
    let notified = 0
    if (message.receiverId !== null) {
      let notification: string | undefined
      for (const ws of sessions.socketsOf(message.receiverId)) {
        const data = ws.getUserData()
        if (data.joined.has(message.conversationId) || data.pending.has(message.conversationId)) continue
        notification ??= frameAround("newMessageNotification", `{"conversationId":"${message.conversationId}","message":${json}}`)
        sessions.send(ws, notification)
        notified++
      }
    }
    const metrics = sessions.metrics
    if (metrics.enabled) {
      const lag = (Date.now() - message.createdAt.epochMillis) / 1000
      if (room !== undefined && room.size > 0) metrics.delivered("room", room.size, lag)
      if (notified > 0) metrics.delivered("notification", notified, lag)
    }
  }

  /**
   * A gap in the bus (Redis was away): joined sockets may have missed messages. Each hears where every
   * conversation it joined (or is joining) ends, from one query for the instance, and rejoins with sinceSeq.
   */
  readonly resync = (
    ids: ReadonlyArray<ConversationId> = [...new Set([...this.sessions.rooms.keys(), ...this.sessions.pendingByConversation.keys()])]
  ): void => {
    // Shutting down, sockets reconnect elsewhere and rejoin anyway: no retries holding the grace period.
    if (ids.length === 0 || this.shuttingDown()) return
    const sessions = this.sessions
    this.run(this.messages.lastSeqs(ids).pipe(
      Effect.sandbox,
      Effect.retry(Schedule.exponential("200 millis").pipe(Schedule.union(Schedule.spaced("5 seconds")), Schedule.upTo("1 minute"))),
      Effect.unsandbox,
      Effect.flatMap((ends) =>
        Effect.sync(() => {
          for (const { conversationId, lastSeq } of ends) {
            const frame = encodeServerEvent("resync", { conversationId, lastSeq })
            const room = sessions.rooms.get(conversationId) ?? []
            for (const ws of new Set([...room, ...sessions.pendingByConversation.get(conversationId) ?? []])) {
              sessions.send(ws, frame)
            }
          }
        })
      ),
      Effect.catchAllCause((cause) => Effect.logWarning("Could not tell sockets to catch up after a gap in events", cause))
    ))
  }
}
