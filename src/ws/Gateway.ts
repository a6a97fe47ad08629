import { Cause, Config, Effect, Exit, FiberSet, Option, Predicate, Schedule, Schema } from "effect"
import * as Crypto from "node:crypto"
import type { ChatEvent } from "../domain/chat/Events.js"
import { Messages } from "../domain/chat/Messages.js"
import { counterpartOf, type ConversationId, encodeMessage, type MessageJson } from "../domain/chat/Model.js"
import { Bus } from "../domain/ports/Bus.js"
import { Presence } from "../domain/presence/Presence.js"
import { Auth } from "../domain/users/Auth.js"
import type { User, UserId } from "../domain/users/Model.js"
import { isUnavailable, retryAfterMs } from "../infra/Unavailable.js"
import { FailureLog } from "./FailureLog.js"
import { InOrder } from "./InOrder.js"
import { Pressure } from "./Overload.js"
import {
  ClientEnvelope,
  type ClientEventName,
  ClientEvents,
  CloseCodes,
  encodeServerEvent,
  envelopeFast,
  issuesOf,
  MaxDepth,
  nestsDeeperThan,
  sendMessageFast,
  type ServerEventName,
  type ErrorCode,
  type ErrorData
} from "./Protocol.js"
import { TokenBucket } from "./TokenBucket.js"
import type * as Uws from "../server/Uws.js"

export const GatewayConfig = Config.all({
  /**
   * Frames above this close the connection with 1009 (message too big): abuse, not a mistake. uWS itself
   * reads frames up to 4 times this and drops the connection without a close frame beyond.
   */
  maxPayloadBytes: Config.integer("WS_MAX_PAYLOAD_BYTES").pipe(Config.withDefault(64 * 1024)),
  /** Frames above this get a FrameTooLarge error and are ignored. */
  maxFrameBytes: Config.integer("WS_MAX_FRAME_BYTES").pipe(Config.withDefault(16 * 1024)),
  idleTimeoutSeconds: Config.integer("WS_IDLE_TIMEOUT_SECONDS").pipe(Config.withDefault(60)),
  /** A socket that falls this far behind is closed rather than buffered without bound. */
  maxBackpressureBytes: Config.integer("WS_MAX_BACKPRESSURE_BYTES").pipe(Config.withDefault(1024 * 1024)),
  sendPerSecond: Config.number("WS_SEND_PER_SECOND").pipe(Config.withDefault(20)),
  sendBurst: Config.number("WS_SEND_BURST").pipe(Config.withDefault(40)),
  typingPerSecond: Config.number("WS_TYPING_PER_SECOND").pipe(Config.withDefault(5)),
  joinPerSecond: Config.number("WS_JOIN_PER_SECOND").pipe(Config.withDefault(10)),
  joinBurst: Config.number("WS_JOIN_BURST").pipe(Config.withDefault(50)),
  readPerSecond: Config.number("WS_READ_PER_SECOND").pipe(Config.withDefault(10)),
  readBurst: Config.number("WS_READ_BURST").pipe(Config.withDefault(30)),
  /** Conversations one socket is in (joined or joining) at once. */
  maxJoinedPerSocket: Config.integer("WS_MAX_JOINED_PER_SOCKET").pipe(Config.withDefault(100)),
  /** Sockets one user holds on this instance; beyond, the upgrade is refused with 429. */
  maxSocketsPerUser: Config.integer("WS_MAX_SOCKETS_PER_USER").pipe(Config.withDefault(20)),
  /** A typing state not refreshed within this time ends by itself. */
  typingExpiryMs: Config.integer("WS_TYPING_EXPIRY_MS").pipe(Config.withDefault(5000)),
  /** Frames being worked on at once; beyond, new ones are refused (joins wait briefly for a slot). */
  wsMaxInFlight: Config.integer("WS_MAX_IN_FLIGHT").pipe(Config.withDefault(4096))
})

interface SocketData {
  readonly user: User
  readonly expiresAt: number
  /** This socket's own topic: every frame for it alone goes out through uWS pub/sub too (see `send`). */
  readonly topic: string
  /** Conversations whose live messages this socket receives (uWS topic subscribed). */
  readonly joined: Set<ConversationId>
  /**
   * The seq up to which each joined conversation's history was sent: older messages published late (a
   * publisher that lost the race after its commit) must not reach this socket a second time.
   */
  readonly joinedAt: Map<ConversationId, number>
  /** Joins in flight: live messages are held here until the history is sent. */
  readonly pending: Map<ConversationId, { readonly held: Array<MessageJson>; joins: number }>
  /** Conversations this socket is typing in, with the timer that ends it. */
  readonly typing: Map<ConversationId, { readonly timer: NodeJS.Timeout; readonly relayedAt: number }>
  readonly sends: TokenBucket
  readonly typings: TokenBucket
  readonly joins: TokenBucket
  readonly reads: TokenBucket
  badFrames: number
  closed: boolean
  expiry: NodeJS.Timeout | undefined
}

type Socket = Uws.WebSocket<SocketData>

const topicOf = (conversationId: string) => `conv:${conversationId}`

type ClientData<K extends ClientEventName> = Schema.Schema.Type<(typeof ClientEvents)[K]>
const isClientEvent = (event: string): event is ClientEventName => Object.hasOwn(ClientEvents, event)

/** A frame whose data is already in wire form (messages, encoded by hand on the hot path). */
const frameOf = (event: ServerEventName, data: unknown, id?: string) =>
  JSON.stringify(id === undefined ? { event, data } : { event, id, data })
/** The same, around data already written as JSON text (a message's, shared by its ack and its broadcast). */
const frameAround = (event: ServerEventName, json: string, id?: string) =>
  id === undefined ? `{"event":"${event}","data":${json}}` : `{"event":"${event}","id":${JSON.stringify(id)},"data":${json}}`

/** What the listener needs of the WebSocket door: its count, and the steps of its shutdown. */
export interface WsDoor {
  readonly connections: () => number
  /** New frames get `ShuttingDown`, new upgrades 503; what is in flight goes on. */
  readonly stopAccepting: () => void
  /** Done when no work started by a socket is in flight. */
  readonly idle: Effect.Effect<void>
  /** Lets sockets take what was written to them (until `graceEnds`, epoch ms), then closes them with 1001. */
  readonly close: (graceEnds: number) => Effect.Effect<void>
}

const errorFrame = (data: ErrorData, id: string | undefined) => encodeServerEvent("error", data, id)

/** Domain failures as the protocol names them. */
const domainError = (error: { readonly _tag: string; readonly message?: string }): ErrorData => {
  switch (error._tag) {
    case "RateLimited": {
      const seconds = "retryAfterSeconds" in error && typeof error.retryAfterSeconds === "number" ? error.retryAfterSeconds : 1
      return { code: "RateLimited", message: "Too many messages: slow down", retryAfterMs: seconds * 1000 }
    }
    case "ConversationNotActive": {
      const status = "status" in error ? error.status : "closed"
      return {
        code: status === "archived" ? "ConversationArchived" : "ConversationClosed",
        message: `The conversation is ${status}: no new messages`
      }
    }
    case "ConversationNotFound":
    case "MessageNotFound":
    case "AttachmentNotFound":
    case "AttachmentUnavailable":
    case "Forbidden":
      return { code: error._tag, message: error.message ?? error._tag }
    default:
      return { code: "Internal", message: "Something went wrong on our side" }
  }
}

/** The WebSocket endpoint `/ws` on the listener's uWS app. */
export const mount = (app: Uws.TemplatedApp) =>
  Effect.gen(function*() {
    const config = yield* GatewayConfig
    const auth = yield* Auth
    const messages = yield* Messages
    const bus = yield* Bus
    const presence = yield* Presence

    // Work started by sockets: tracked so that shutdown can wait for sends in flight.
    const fibers = yield* FiberSet.make<unknown, unknown>()
    const run = yield* FiberSet.runtime(fibers)<never>()

    const sockets = new Set<Socket>()
    const byUser = new Map<UserId, Set<Socket>>()
    const pendingByConversation = new Map<ConversationId, Set<Socket>>()
    let shuttingDown = false

    // Numbers each socket's own topic.
    let upgrades = 0
    // Who is in each conversation's room on this instance, to look at their backlog before a broadcast.
    const rooms = new Map<ConversationId, Set<Socket>>()
    const subscribe = (ws: Socket, conversationId: ConversationId, historyTo: number) => {
      ws.subscribe(topicOf(conversationId))
      ws.getUserData().joined.add(conversationId)
      ws.getUserData().joinedAt.set(conversationId, historyTo)
      const room = rooms.get(conversationId) ?? new Set()
      room.add(ws)
      rooms.set(conversationId, room)
    }
    const unsubscribe = (ws: Socket, conversationId: ConversationId) => {
      if (!ws.getUserData().closed) ws.unsubscribe(topicOf(conversationId))
      ws.getUserData().joinedAt.delete(conversationId)
      const room = rooms.get(conversationId)
      room?.delete(ws)
      if (room?.size === 0) rooms.delete(conversationId)
    }
    const tooSlow = (ws: Socket) => {
      if (ws.getUserData().closed || ws.getBufferedAmount() <= config.maxBackpressureBytes) return false
      ws.end(CloseCodes.tooSlow, "too slow")
      return true
    }

    // Every frame leaves through uWS pub/sub: a conversation's topic for its live messages, the socket's own
    // topic for the rest (acks, errors, history, notifications). uWS keeps each socket's frames in publish
    // order until the end of the event loop's turn and writes them corked: an ack and the echo of the same
    // message, or the acks of one group-committed batch, leave in one write per socket, not one each.
    /** Queues a frame for this socket (a socket that does not read is cut off, never buffered without bound). */
    const send = (ws: Socket, frame: string) => {
      if (ws.getUserData().closed || tooSlow(ws)) return
      app.publish(ws.getUserData().topic, frame)
    }
    const sendError = (ws: Socket, id: string | undefined, code: ErrorCode, message: string, retryAfterMs?: number) =>
      send(ws, errorFrame({ code, message, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) }, id))
    // Acks carry plain JSON data (messages already in wire form).
    const ack = (ws: Socket, id: string | undefined, data: unknown) => {
      if (id !== undefined) send(ws, frameOf("ack", data, id))
    }
    // The broadcast and then the sender's ack carry the same message object (the local bus delivers while
    // the send completes): its JSON is written once. One slot, not a WeakMap: a long-lived table holding
    // young messages made every one of them outlive the young generation.
    let lastText: { readonly message: MessageJson; readonly text: string } | undefined
    const jsonOf = (message: MessageJson) => {
      if (lastText?.message === message) return lastText.text
      const text = JSON.stringify(encodeMessage(message))
      lastText = { message, text }
      return text
    }
    const socketsOf = (userId: UserId) => byUser.get(userId) ?? new Set<Socket>()

    const internalError: ErrorData = { code: "Internal", message: "Something went wrong on our side" }
    // Each kind of failure (where, and what failed) is logged once per period, then counted.
    const failures = new FailureLog(10_000, (kind, suppressed, periodMs) =>
      run(Effect.logWarning(`WebSocket ${kind}: ${suppressed} more in the last ${periodMs / 1000} s`)))
    const kindOf = (cause: Cause.Cause<unknown>) => {
      const error = Cause.squash(cause)
      const name = error instanceof Error
        ? error.name
        : Predicate.hasProperty(error, "_tag") ? String(error._tag) : typeof error
      return name.slice(0, 64)
    }
    /** A failure nobody asked for: logged (the client gets its answer elsewhere). */
    const failed = (where: string, cause: Cause.Cause<unknown>) => {
      if (Cause.isInterruptedOnly(cause)) return
      const kind = `${where} failed (${kindOf(cause)})`
      if (failures.take(kind)) run(Effect.logError(`WebSocket ${kind}`, cause))
    }
    // The database (or another backend) is away: nothing was done, the client retries later and keeps its token.
    const unavailableError: ErrorData = { code: "Unavailable", message: "The service is briefly unavailable: retry shortly" }
    const unavailableRetryMs = 1000
    const unavailableLog = (where: string, cause: Cause.Cause<unknown>) => {
      const kind = `${where}: a backend is unavailable (${kindOf(cause)})`
      if (failures.take(kind)) {
        run(Effect.logWarning(`WebSocket ${kind}: answered Unavailable`, Cause.pretty(cause).split("\n")[0]))
      }
    }
    /** An answer after a failure: when even that throws (the socket or response is gone), the log line is all. */
    const answerQuietly = (answer: () => void) => {
      try {
        answer()
      } catch {
        // gone already
      }
    }

    // Overload sheds frames with an error (nothing done, retry later) instead of queueing work without bound;
    // the hint grows with the excess demand and is jittered. Joins (a reconnecting client's resumes) wait a
    // little for a free slot first, in a small bounded queue.
    let wsInFlight = 0
    const pressure = new Pressure(config.wsMaxInFlight)
    const overloaded = (ws: Socket, id: string | undefined) =>
      sendError(ws, id, "Overloaded", "The server is busy: retry in a moment", pressure.refuse())
    interface Waiting {
      readonly ws: Socket
      readonly start: () => void
      readonly refused: () => void
      readonly timer: NodeJS.Timeout
    }
    const waiting: Array<Waiting> = []
    const maxWaiting = Math.max(16, Math.ceil(config.wsMaxInFlight / 4))
    const maxWaitMs = 2000
    const admitWaiting = () => {
      while (wsInFlight < config.wsMaxInFlight && waiting.length > 0) {
        const next = waiting.shift()!
        clearTimeout(next.timer)
        if (next.ws.getUserData().closed) next.refused()
        else next.start()
      }
    }

    /**
     * Runs a handler's effect for a socket; a domain failure becomes its `error` frame, infrastructure away
     * `Unavailable`, a defect `Internal`. With `refused` the frame may wait for a slot (joins); `refused` runs
     * when it is not run after all.
     */
    const handle = <A, E extends { readonly _tag: string; readonly message?: string }>(
      ws: Socket,
      id: string | undefined,
      effect: Effect.Effect<A, E>,
      onSuccess: (value: A) => void,
      refused?: () => void
    ): void => {
      // Shutting down: in-flight work finishes and flushes its acks; nothing new starts.
      if (shuttingDown) {
        sendError(ws, id, "ShuttingDown", "The server is shutting down: reconnect elsewhere")
        return refused?.()
      }
      const start = () => {
        wsInFlight++
        // The outcome is handled in the fiber's observer, synchronously: no more steps on the hot path.
        run(effect).addObserver((exit) => {
          wsInFlight--
          if (waiting.length > 0) admitWaiting()
          if (Exit.isFailure(exit)) return failure(ws, id, exit.cause)
          try {
            onSuccess(exit.value)
          } catch (error) {
            failure(ws, id, Cause.die(error))
          }
        })
      }
      if (wsInFlight < config.wsMaxInFlight) return start()
      if (refused === undefined || waiting.length >= maxWaiting) {
        overloaded(ws, id)
        return refused?.()
      }
      const entry: Waiting = {
        ws,
        start,
        refused,
        timer: setTimeout(() => {
          const at = waiting.indexOf(entry)
          if (at >= 0) waiting.splice(at, 1)
          if (!ws.getUserData().closed) overloaded(ws, id)
          refused()
        }, maxWaitMs)
      }
      waiting.push(entry)
    }
    const failure = <E extends { readonly _tag: string; readonly message?: string }>(
      ws: Socket,
      id: string | undefined,
      cause: Cause.Cause<E>
    ) => {
      if (isUnavailable(cause)) {
        unavailableLog("handler", cause)
        return send(ws, errorFrame({ ...unavailableError, retryAfterMs: retryAfterMs(unavailableRetryMs, 2) }, id))
      }
      const failure = Cause.failureOption(cause)
      if (Option.isSome(failure)) return send(ws, errorFrame(domainError(failure.value), id))
      failed("handler", cause)
      send(ws, errorFrame(internalError, id))
    }

    // ---- typing -------------------------------------------------------------------------------

    const stopTyping = (ws: Socket, conversationId: ConversationId, recipientId: UserId | undefined) => {
      const data = ws.getUserData()
      const state = data.typing.get(conversationId)
      if (state === undefined) return
      clearTimeout(state.timer)
      data.typing.delete(conversationId)
      if (recipientId !== undefined) {
        run(bus.publish({ _tag: "UserTyping", conversationId, userId: data.user.id, recipientId, isTyping: false }))
      }
    }

    // ---- client events ------------------------------------------------------------------------

    const join = (ws: Socket, id: string | undefined, input: ClientData<"joinConversation">) => {
      const data = ws.getUserData()
      const { conversationId } = input
      const wait = data.joins.take()
      if (wait > 0) return sendError(ws, id, "RateLimited", "Too many joins: slow down", wait)
      if (
        !data.joined.has(conversationId) && !data.pending.has(conversationId) &&
        data.joined.size + data.pending.size >= config.maxJoinedPerSocket
      ) {
        return sendError(
          ws,
          id,
          "TooManyJoined",
          `A socket is in at most ${config.maxJoinedPerSocket} conversations at once: leave one first`
        )
      }
      if (data.joined.delete(conversationId)) unsubscribe(ws, conversationId)
      // Joins of one conversation in flight on this socket share the buffer; the last one to settle ends it.
      const pending = data.pending.get(conversationId) ?? { held: [], joins: 0 }
      pending.joins++
      data.pending.set(conversationId, pending)
      const waiting = pendingByConversation.get(conversationId) ?? new Set()
      waiting.add(ws)
      pendingByConversation.set(conversationId, waiting)
      const settle = () => {
        if (--pending.joins === 0) {
          data.pending.delete(conversationId)
          waiting.delete(ws)
          if (waiting.size === 0) pendingByConversation.delete(conversationId)
        }
        return [...pending.held]
      }
      handle(
        ws,
        id,
        Effect.gen(function*() {
          const { level, participants } = yield* messages.access(data.user, conversationId)
          const page = yield* messages.history(data.user, conversationId, {
            ...(input.sinceSeq === undefined ? {} : { afterSeq: input.sinceSeq }),
            limit: input.sinceSeq === undefined ? 50 : 100
          })
          return { page, recipientId: level === "participant" ? counterpartOf(participants, data.user.id) : undefined }
        }).pipe(Effect.onExit((exit) => Exit.isFailure(exit) ? Effect.sync(settle) : Effect.void)),
        ({ page, recipientId }) => {
          const held = settle()
          if (data.closed) return
          const last = page.messages.at(-1)
          const toSeq = last?.seq ?? null
          send(ws, frameOf("conversationHistory", {
            conversationId,
            messages: page.messages.map(encodeMessage),
            fromSeq: page.messages[0]?.seq ?? null,
            toSeq,
            hasMore: page.hasMore
          }))
          // On the latest page `hasMore` means older history: the socket goes live at once. After `sinceSeq` it
          // means newer messages still to fetch: the client pages on (joining again from toSeq) before it goes live.
          const live = input.sinceSeq === undefined || !page.hasMore
          if (live && data.joined.has(conversationId)) {
            // Another join of this socket went live while this one was in flight: since then every message
            // after its history reached the socket (held ones, then the room's); sending the held ones again
            // would repeat them. Only the bound of what came with history moves.
            const after = Math.max(toSeq ?? 0, data.joinedAt.get(conversationId) ?? 0)
            data.joinedAt.set(conversationId, after)
          } else if (live) {
            const after = toSeq ?? input.sinceSeq ?? 0
            for (const message of held) if (message.seq > after) send(ws, frameOf("newMessage", encodeMessage(message)))
            // Live messages queue behind the history and the held ones: one socket's frames keep publish order.
            subscribe(ws, conversationId, after)
            if (recipientId !== undefined) {
              run(bus.publish({ _tag: "UserJoined", conversationId, userId: data.user.id, recipientId }))
            }
          }
          ack(ws, id, { conversationId, joined: live, toSeq })
        },
        settle
      )
    }

    const leave = (ws: Socket, id: string | undefined, input: ClientData<"leaveConversation">) => {
      const data = ws.getUserData()
      const { conversationId } = input
      handle(ws, id, messages.access(data.user, conversationId), ({ level, participants }) => {
        const recipientId = level === "participant" ? counterpartOf(participants, data.user.id) : undefined
        stopTyping(ws, conversationId, recipientId)
        const wasJoined = data.joined.delete(conversationId)
        if (wasJoined) unsubscribe(ws, conversationId)
        if (wasJoined && recipientId !== undefined) {
          run(bus.publish({ _tag: "UserLeft", conversationId, userId: data.user.id, recipientId }))
        }
        ack(ws, id, { conversationId, left: wasJoined })
      })
    }

    const sendMessage = (ws: Socket, id: string | undefined, input: ClientData<"sendMessage">) => {
      const data = ws.getUserData()
      const wait = data.sends.take()
      if (wait > 0) return sendError(ws, id, "RateLimited", "Too many messages: slow down", wait)
      handle(
        ws,
        id,
        messages.send(data.user, {
          conversationId: input.conversationId,
          type: input.type ?? "text",
          content: input.content,
          attachmentId: input.attachmentId,
          clientMessageId: input.clientMessageId ?? Crypto.randomUUID()
        }),
        ({ message }) => {
          // Acked only now: the message is committed. A retry gets the same ack (announced again, it reaches no one twice).
          if (id !== undefined) send(ws, frameAround("ack", `{"message":${jsonOf(message)}}`, id))
          lastText = undefined
          if (message.receiverId !== null) stopTyping(ws, input.conversationId, message.receiverId)
        }
      )
    }

    const typing = (ws: Socket, id: string | undefined, input: ClientData<"typing">) => {
      const data = ws.getUserData()
      const wait = data.typings.take()
      if (wait > 0) return sendError(ws, id, "RateLimited", "Too many typing events", wait)
      const { conversationId } = input
      handle(ws, id, messages.access(data.user, conversationId), ({ level, participants }) => {
        if (level !== "participant") return sendError(ws, id, "Forbidden", "Only participants can type here")
        const recipientId = counterpartOf(participants, data.user.id)
        if (!input.isTyping) {
          stopTyping(ws, conversationId, recipientId)
          return ack(ws, id, { conversationId, isTyping: false })
        }
        const now = Date.now()
        const previous = data.typing.get(conversationId)
        if (previous !== undefined) clearTimeout(previous.timer)
        // Relayed when it starts and then at most every half expiry: keystrokes never flood the counterpart.
        const relay = previous === undefined || now - previous.relayedAt >= config.typingExpiryMs / 2
        const timer = setTimeout(() => stopTyping(ws, conversationId, recipientId), config.typingExpiryMs)
        data.typing.set(conversationId, { timer, relayedAt: relay ? now : previous.relayedAt })
        if (relay) run(bus.publish({ _tag: "UserTyping", conversationId, userId: data.user.id, recipientId, isTyping: true }))
        ack(ws, id, { conversationId, isTyping: true })
      })
    }

    const markAsRead = (ws: Socket, id: string | undefined, input: ClientData<"markAsRead">) => {
      const wait = ws.getUserData().reads.take()
      if (wait > 0) return sendError(ws, id, "RateLimited", "Too many read receipts: slow down", wait)
      const user = ws.getUserData().user
      if ("messageId" in input) {
        return handle(ws, id, messages.markRead(user, input.messageId), (message) =>
          ack(ws, id, { messageId: message.id, isRead: message.isRead }))
      }
      handle(
        ws,
        id,
        messages.markConversationRead(user, input.conversationId, input.upToSeq),
        (result) => ack(ws, id, { conversationId: input.conversationId, ...result })
      )
    }

    /** Decodes an event's data with its schema (or `fast`, when it can), then hands it to its handler. */
    const on = <A, I>(
      schema: Schema.Schema<A, I>,
      handler: (ws: Socket, id: string | undefined, data: A) => void,
      fast?: (data: unknown) => A | undefined
    ) => {
      const decode = Schema.decodeUnknownEither(schema)
      return (ws: Socket, id: string | undefined, event: string, data: unknown) => {
        const quick = fast?.(data)
        if (quick !== undefined) {
          ws.getUserData().badFrames = 0
          return handler(ws, id, quick)
        }
        // The hand-written checks accept flat data only; anything else is bounded before the schema sees it.
        if (nestsDeeperThan(data, MaxDepth - 1)) return badFrame(ws, id, "BadFrame", tooDeep)
        const decoded = decode(data ?? {})
        if (decoded._tag === "Left") return sendError(ws, id, "InvalidData", `${event}: ${issuesOf(decoded.left)}`)
        ws.getUserData().badFrames = 0
        handler(ws, id, decoded.right)
      }
    }

    const routes: Record<ClientEventName, ReturnType<typeof on>> = {
      joinConversation: on(ClientEvents.joinConversation, join),
      leaveConversation: on(ClientEvents.leaveConversation, leave),
      sendMessage: on(ClientEvents.sendMessage, sendMessage, sendMessageFast),
      typing: on(ClientEvents.typing, typing),
      markAsRead: on(ClientEvents.markAsRead, markAsRead)
    }

    const badFrame = (ws: Socket, id: string | undefined, code: ErrorCode, message: string) => {
      const data = ws.getUserData()
      sendError(ws, id, code, message)
      if (++data.badFrames >= 20) ws.end(CloseCodes.abuse, "too many bad frames")
    }

    const decodeEnvelope = Schema.decodeUnknownEither(ClientEnvelope)
    const tooDeep = `Frames nest at most ${MaxDepth} levels of objects and arrays`
    const unknownEvent = `Unknown event: the events are ${Object.keys(ClientEvents).join(", ")}`

    const onMessage = (ws: Socket, buffer: ArrayBuffer, isBinary: boolean) => {
      if (buffer.byteLength > config.maxPayloadBytes) return ws.end(CloseCodes.messageTooBig, "message too big")
      if (isBinary) return badFrame(ws, undefined, "BadFrame", "Frames are JSON text")
      if (buffer.byteLength > config.maxFrameBytes) {
        return badFrame(ws, undefined, "FrameTooLarge", `Frames are at most ${config.maxFrameBytes} bytes`)
      }
      // The buffer is neutered when this callback returns: decode it now.
      let json: unknown
      try {
        json = JSON.parse(Buffer.from(buffer).toString("utf8"))
      } catch {
        return badFrame(ws, undefined, "BadJson", "The frame is not valid JSON")
      }
      const quick = envelopeFast(json)
      if (quick === undefined) {
        const id = typeof json === "object" && json !== null && "id" in json && typeof json.id === "string" &&
            json.id.length >= 1 && json.id.length <= 64
          ? json.id
          : undefined
        if (nestsDeeperThan(json, MaxDepth)) return badFrame(ws, id, "BadFrame", tooDeep)
        const envelope = decodeEnvelope(json)
        if (envelope._tag === "Left") {
          return badFrame(ws, id, "BadFrame", `Expected { event, data, id? }: ${issuesOf(envelope.left)}`)
        }
        return route(ws, envelope.right)
      }
      route(ws, quick)
    }

    const route = (ws: Socket, { data, event, id }: typeof ClientEnvelope.Type) => {
      if (!isClientEvent(event)) return badFrame(ws, id, "UnknownEvent", unknownEvent)
      routes[event](ws, id, event, data)
    }

    // ---- bus → sockets ------------------------------------------------------------------------

    const deliverMessage = (message: MessageJson) => {
      const json = jsonOf(message)
      const frame = frameAround("newMessage", json)
      const room = rooms.get(message.conversationId)
      // Normally one publish to the room's topic; right after a join, a late message the joiner already got
      // with its history goes only to the others, one by one (rooms are a few sockets).
      let sentWithHistory = false
      for (const ws of room ?? []) {
        tooSlow(ws)
        if ((ws.getUserData().joinedAt.get(message.conversationId) ?? 0) >= message.seq) sentWithHistory = true
      }
      if (!sentWithHistory) app.publish(topicOf(message.conversationId), frame)
      else {
        for (const ws of room ?? []) {
          if ((ws.getUserData().joinedAt.get(message.conversationId) ?? 0) < message.seq) send(ws, frame)
        }
      }
      for (const ws of pendingByConversation.get(message.conversationId) ?? []) {
        ws.getUserData().pending.get(message.conversationId)?.held.push(message)
      }
      if (message.receiverId !== null) {
        let notification: string | undefined
        for (const ws of socketsOf(message.receiverId)) {
          const data = ws.getUserData()
          if (data.joined.has(message.conversationId) || data.pending.has(message.conversationId)) continue
          notification ??= frameAround("newMessageNotification", `{"conversationId":"${message.conversationId}","message":${json}}`)
          send(ws, notification)
        }
      }
    }
    // A gap that does not fill (its publisher died between commit and publish): the room is told to resync.
    const inOrder = new InOrder(deliverMessage, 250, 100_000, (conversationId) => resync([conversationId]))

    const deliver = (event: ChatEvent) => {
      switch (event._tag) {
        case "MessageCreated":
          return inOrder.push(event.message)
        case "MessagesRead": {
          const frame = encodeServerEvent("messageRead", {
            conversationId: event.conversationId,
            readerId: event.readerId,
            messageId: event.messageId,
            upToSeq: event.upToSeq,
            readAt: event.readAt
          })
          for (const ws of socketsOf(event.senderId)) send(ws, frame)
          for (const ws of socketsOf(event.readerId)) send(ws, frame)
          return
        }
        case "ConversationClosed":
        case "ConversationArchived": {
          const frame = event._tag === "ConversationClosed"
            ? encodeServerEvent("conversationClosed", {
              conversationId: event.conversationId,
              status: "closed",
              reason: event.reason
            })
            : encodeServerEvent("conversationArchived", { conversationId: event.conversationId, status: "archived" })
          for (const userId of [event.userId, event.trainerId]) {
            for (const ws of socketsOf(userId)) {
              stopTyping(ws, event.conversationId, undefined)
              send(ws, frame)
            }
          }
          return
        }
        case "UserTyping":
        case "UserJoined":
        case "UserLeft": {
          const frame = event._tag === "UserTyping"
            ? encodeServerEvent("userTyping", {
              conversationId: event.conversationId,
              userId: event.userId,
              isTyping: event.isTyping
            })
            : encodeServerEvent(event._tag === "UserJoined" ? "userJoined" : "userLeft", {
              conversationId: event.conversationId,
              userId: event.userId
            })
          for (const ws of socketsOf(event.recipientId)) {
            if (ws.getUserData().joined.has(event.conversationId)) send(ws, frame)
          }
          return
        }
        case "PresenceChanged": {
          const frame = encodeServerEvent("presence", {
            userId: event.userId,
            online: event.online,
            lastSeenAt: event.lastSeenAt
          })
          for (const userId of event.recipientIds) for (const ws of socketsOf(userId)) send(ws, frame)
          return
        }
        case "UserRevoked": {
          for (const ws of [...socketsOf(event.userId)]) {
            if (event.reason === "deactivated") ws.end(CloseCodes.revoked, "user deactivated")
            else ws.end(CloseCodes.signedOut, "password changed: sign in again")
          }
          return
        }
      }
    }

    // A gap in the bus (Redis was away): joined sockets may have missed messages. Each hears where every
    // conversation it joined (or is joining) ends, from one query for the instance, and rejoins with sinceSeq.
    function resync(ids: ReadonlyArray<ConversationId> = [...new Set([...rooms.keys(), ...pendingByConversation.keys()])]) {
      // Shutting down, sockets reconnect elsewhere and rejoin anyway: no retries holding the grace period.
      if (ids.length === 0 || shuttingDown) return
      run(messages.lastSeqs(ids).pipe(
        Effect.sandbox,
        Effect.retry(Schedule.exponential("200 millis").pipe(Schedule.union(Schedule.spaced("5 seconds")), Schedule.upTo("1 minute"))),
        Effect.unsandbox,
        Effect.flatMap((ends) =>
          Effect.sync(() => {
            for (const { conversationId, lastSeq } of ends) {
              const frame = encodeServerEvent("resync", { conversationId, lastSeq })
              for (const ws of new Set([...rooms.get(conversationId) ?? [], ...pendingByConversation.get(conversationId) ?? []])) {
                send(ws, frame)
              }
            }
          })
        ),
        Effect.catchAllCause((cause) => Effect.logWarning("Could not tell sockets to catch up after a gap in events", cause))
      ))
    }

    yield* bus.subscribe(deliver, () => resync())

    // ---- sockets ------------------------------------------------------------------------------

    const tokenOf = (authorization: string, query: string) => {
      const bearer = /^bearer\s+(.+)$/i.exec(authorization.trim())
      if (bearer?.[1] !== undefined) return bearer[1].trim()
      return new URLSearchParams(query).get("token")?.trim() ?? ""
    }

    const refuse = (res: Uws.HttpResponse, status: string, body: ErrorData, headers: Record<string, string> = {}): void => {
      res.cork(() => {
        res.writeStatus(status).writeHeader("content-type", "application/json")
        for (const [name, value] of Object.entries(headers)) res.writeHeader(name, value)
        res.end(JSON.stringify(body))
      })
    }

    // The last resort around every callback uWS calls: a throw there would end the process. It becomes a log
    // line and an answer instead (a 500, an `Internal` error frame, a 1011 close), whatever threw.
    type Upgrade = (res: Uws.HttpResponse, req: Uws.HttpRequest, context: Uws.us_socket_context_t) => void
    const guardUpgrade = (upgrade: Upgrade): Upgrade => (res, req, context) => {
      try {
        upgrade(res, req, context)
      } catch (error) {
        failed("upgrade", Cause.die(error))
        answerQuietly(() => refuse(res, "500 Internal Server Error", internalError))
      }
    }
    const guardOpen = (open: (ws: Socket) => void) => (ws: Socket) => {
      try {
        open(ws)
      } catch (error) {
        failed("open", Cause.die(error))
        answerQuietly(() => ws.end(1011, "internal error"))
      }
    }
    const guardClose = (close: (ws: Socket, code: number, message: ArrayBuffer) => void) =>
      (ws: Socket, code: number, message: ArrayBuffer) => {
        try {
          close(ws, code, message)
        } catch (error) {
          failed("close", Cause.die(error))
        }
      }
    const guardedMessage = (ws: Socket, buffer: ArrayBuffer, isBinary: boolean) => {
      try {
        onMessage(ws, buffer, isBinary)
      } catch (error) {
        failed("message", Cause.die(error))
        answerQuietly(() => send(ws, errorFrame(internalError, undefined)))
      }
    }

    app.ws<SocketData>("/ws", {
      // Above our own limit, so that an oversized frame reaches `message` and gets a proper 1009 close.
      maxPayloadLength: config.maxPayloadBytes * 4,
      idleTimeout: config.idleTimeoutSeconds,
      sendPingsAutomatically: true,
      // The hard stop: sockets past WS_MAX_BACKPRESSURE_BYTES are closed with 4009 before a send; uWS drops
      // (and closes) only far beyond it.
      maxBackpressure: config.maxBackpressureBytes * 4,
      closeOnBackpressureLimit: 1,
      upgrade: guardUpgrade((res, req, context) => {
        // Everything from `req` is read now: it is gone once this callback returns.
        const key = req.getHeader("sec-websocket-key")
        const protocol = req.getHeader("sec-websocket-protocol")
        const extensions = req.getHeader("sec-websocket-extensions")
        const token = tokenOf(req.getHeader("authorization"), req.getQuery())
        let aborted = false
        res.onAborted(() => {
          aborted = true
        })
        if (shuttingDown) {
          return refuse(res, "503 Service Unavailable", { code: "ShuttingDown", message: "The server is shutting down" })
        }
        if (token === "") {
          return refuse(res, "401 Unauthorized", { code: "Forbidden", message: "Missing token" })
        }
        run(auth.session(token).pipe(
          Effect.exit,
          Effect.flatMap((exit) =>
            Effect.sync(() => {
              if (aborted) return
              if (Exit.isFailure(exit)) {
                // Only the token's own problems are 401: with the database away the client must keep its token.
                if (isUnavailable(exit.cause)) {
                  unavailableLog("upgrade", exit.cause)
                  const wait = retryAfterMs(unavailableRetryMs, 2)
                  return refuse(res, "503 Service Unavailable", { ...unavailableError, retryAfterMs: wait }, {
                    "retry-after": String(Math.ceil(wait / 1000))
                  })
                }
                const failure = Cause.failureOption(exit.cause)
                if (failure._tag === "None") {
                  failed("upgrade", exit.cause)
                  return refuse(res, "500 Internal Server Error", internalError)
                }
                return refuse(res, "401 Unauthorized", { code: "Forbidden", message: failure.value.message })
              }
              const { expiresAt, user } = exit.value
              // `open` runs within `upgrade`: the count includes every socket upgraded before this one.
              if ((byUser.get(user.id)?.size ?? 0) >= config.maxSocketsPerUser) {
                return refuse(res, "429 Too Many Requests", {
                  code: "TooManyConnections",
                  message: `A user holds at most ${config.maxSocketsPerUser} sockets on one server: close one first`
                })
              }
              const data: SocketData = {
                user,
                expiresAt,
                topic: `socket:${++upgrades}`,
                joined: new Set(),
                joinedAt: new Map(),
                pending: new Map(),
                typing: new Map(),
                sends: new TokenBucket(config.sendPerSecond, config.sendBurst),
                typings: new TokenBucket(config.typingPerSecond, config.typingPerSecond * 2),
                joins: new TokenBucket(config.joinPerSecond, config.joinBurst),
                reads: new TokenBucket(config.readPerSecond, config.readBurst),
                badFrames: 0,
                closed: false,
                expiry: undefined
              }
              res.cork(() => res.upgrade(data, key, protocol, extensions, context))
            })
          ),
          Effect.catchAllCause((cause) =>
            Effect.sync(() => {
              failed("upgrade", cause)
              if (!aborted) answerQuietly(() => refuse(res, "500 Internal Server Error", internalError))
            })
          )
        ))
      }),
      open: guardOpen((ws) => {
        const data = ws.getUserData()
        ws.subscribe(data.topic)
        sockets.add(ws)
        const mine = byUser.get(data.user.id) ?? new Set()
        mine.add(ws)
        byUser.set(data.user.id, mine)
        if (mine.size === 1) run(presence.connected(data.user.id))
        const left = data.expiresAt * 1000 - Date.now()
        data.expiry = setTimeout(() => {
          if (!data.closed) ws.end(CloseCodes.tokenExpired, "token expired")
        }, Math.min(Math.max(left, 0), 2 ** 31 - 1))
      }),
      message: guardedMessage,
      close: guardClose((ws) => {
        const data = ws.getUserData()
        data.closed = true
        clearTimeout(data.expiry)
        sockets.delete(ws)
        const mine = byUser.get(data.user.id)
        mine?.delete(ws)
        if (mine?.size === 0) {
          byUser.delete(data.user.id)
          run(presence.disconnected(data.user.id))
        }
        for (const conversationId of data.pending.keys()) pendingByConversation.get(conversationId)?.delete(ws)
        for (const conversationId of data.joined) unsubscribe(ws, conversationId)
        for (const conversationId of new Set([...data.typing.keys(), ...data.joined])) {
          const timer = data.typing.get(conversationId)?.timer
          if (timer !== undefined) clearTimeout(timer)
          // Tell the counterpart this device is gone from the conversation.
          run(Effect.flatMap(messages.access(data.user, conversationId), ({ level, participants }) => {
            if (level !== "participant") return Effect.void
            const recipientId = counterpartOf(participants, data.user.id)
            const userId = data.user.id
            return Effect.all([
              data.typing.has(conversationId)
                ? bus.publish({ _tag: "UserTyping", conversationId, userId, recipientId, isTyping: false })
                : Effect.void,
              data.joined.has(conversationId)
                ? bus.publish({ _tag: "UserLeft", conversationId, userId, recipientId })
                : Effect.void
            ])
          }).pipe(Effect.ignore))
        }
      })
    })

    return {
      connections: () => sockets.size,
      stopAccepting: () => {
        shuttingDown = true
      },
      idle: FiberSet.awaitEmpty(fibers),
      // uWS writes published frames at the end of the loop's turn; the close frame goes after them. Sockets
      // still writing get the rest of the grace to take them.
      close: (graceEnds) =>
        Effect.gen(function*() {
          yield* Effect.void.pipe(
            Effect.delay("20 millis"),
            Effect.repeat({ until: () => Date.now() >= graceEnds || [...sockets].every((ws) => ws.getBufferedAmount() === 0) })
          )
          for (const ws of [...sockets]) ws.end(1001, "server shutting down")
        })
    } satisfies WsDoor
  })
