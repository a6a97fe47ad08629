import * as Crypto from "node:crypto"
import { Config, Effect, Exit, FiberSet } from "effect"
import { Forbidden } from "../Errors.js"
import { Bus } from "../ports/Bus.js"
import type { Transport } from "../ports/Metrics.js"
import { PresenceStore } from "../ports/PresenceStore.js"
import type { ChatEvent } from "./Events.js"
import type { History } from "../ports/MessagesRepo.js"
import type { User, UserId } from "../users/Model.js"
import { Messages, type SendError, type SendMessage, type Sent } from "./Messages.js"
import { type ConversationId, counterpartOf, type MessageId, type Seq } from "./Model.js"

export const LiveConfig = Config.all({
  /** A typing state not refreshed within this time ends by itself (the name predates the Socket.IO door). */
  typingExpiryMs: Config.integer("WS_TYPING_EXPIRY_MS").pipe(Config.withDefault(5000))
})

/** What a join found: the page to show, whether the joiner goes live now, and who is on the other side. */
export interface Joined {
  readonly page: History
  /**
   * On the latest page `hasMore` means older history: the joiner goes live at once. After `sinceSeq` it means
   * newer messages still to fetch: the client pages on (joining again from the page's end) before it goes live.
   */
  readonly live: boolean
  /** The counterpart who hears of this participant's comings and goings; none for an admin reading along. */
  readonly recipientId: UserId | undefined
}

interface Typing {
  readonly timer: NodeJS.Timeout
  readonly relayedAt: number
  readonly recipientId: UserId
}

/**
 * The live side of conversations for one connected device (a socket of any door): joins, leaves, typing and
 * what its going away ends. Transport-neutral: doors decode frames, call it, and encode what it answers;
 * everything others hear of it goes out on the bus from here. A plain object per socket (no closures):
 * idle sockets are many.
 */
export class LiveSession {
  /** Conversations this device receives live, with the counterpart to tell when it leaves. */
  private live: Map<ConversationId, UserId | undefined> | undefined
  private typingIn: Map<ConversationId, Typing> | undefined

  constructor(readonly user: User, private readonly core: Core) {}

  /** Access, then the latest page (or what follows `sinceSeq`). */
  join(conversationId: ConversationId, sinceSeq?: Seq) {
    const { messages } = this.core
    const user = this.user
    return Effect.gen(function*() {
      const { level, participants } = yield* messages.access(user, conversationId)
      const page = yield* messages.history(user, conversationId, {
        ...(sinceSeq === undefined ? {} : { afterSeq: sinceSeq }),
        limit: sinceSeq === undefined ? 50 : 100
      })
      const joined: Joined = {
        page,
        live: sinceSeq === undefined || !page.hasMore,
        recipientId: level === "participant" ? counterpartOf(participants, user.id) : undefined
      }
      return joined
    })
  }

  /** The device receives the conversation's live messages from now on: the counterpart hears it joined. */
  wentLive(conversationId: ConversationId, recipientId: UserId | undefined): void {
    if (this.live?.has(conversationId) !== true) this.core.viewed(conversationId, this.user.id, 1)
    ;(this.live ??= new Map()).set(conversationId, recipientId)
    if (recipientId !== undefined) {
      this.core.publish({ _tag: "UserJoined", conversationId, userId: this.user.id, recipientId })
    }
  }

  /** Stops receiving without a word (the door is about to join it again). */
  paused(conversationId: ConversationId): void {
    if (this.live?.delete(conversationId) === true) this.core.viewed(conversationId, this.user.id, -1)
  }

  /** Leaves a conversation: typing there ends, and the counterpart hears it left (if it was live). */
  leave(conversationId: ConversationId) {
    return Effect.map(this.core.messages.access(this.user, conversationId), ({ level, participants }) => {
      const recipientId = level === "participant" ? counterpartOf(participants, this.user.id) : undefined
      this.stopTyping(conversationId, true)
      const left = this.live?.delete(conversationId) ?? false
      if (left) this.core.viewed(conversationId, this.user.id, -1)
      if (left && recipientId !== undefined) {
        this.core.publish({ _tag: "UserLeft", conversationId, userId: this.user.id, recipientId })
      }
      return { left }
    })
  }

  /**
   * Typing starts or stops. Never stored: relayed when it starts and then at most every half expiry (keystrokes
   * never flood the counterpart), and it ends by itself when not refreshed within the expiry.
   */
  typing(conversationId: ConversationId, isTyping: boolean) {
    return Effect.flatMap(this.core.messages.access(this.user, conversationId), ({ level, participants }) => {
      if (level !== "participant") return Effect.fail(new Forbidden({ message: "Only participants can type here" }))
      if (!isTyping) {
        this.stopTyping(conversationId, true)
        return Effect.succeed({ isTyping: false })
      }
      const recipientId = counterpartOf(participants, this.user.id)
      const expiryMs = this.core.typingExpiryMs
      const now = Date.now()
      const typingIn = (this.typingIn ??= new Map())
      const previous = typingIn.get(conversationId)
      if (previous !== undefined) clearTimeout(previous.timer)
      const relay = previous === undefined || now - previous.relayedAt >= expiryMs / 2
      const timer = setTimeout(() => this.stopTyping(conversationId, true), expiryMs)
      typingIn.set(conversationId, { timer, relayedAt: relay ? now : previous.relayedAt, recipientId })
      if (relay) this.core.publish({ _tag: "UserTyping", conversationId, userId: this.user.id, recipientId, isTyping: true })
      return Effect.succeed({ isTyping: true })
    })
  }

  /** Sends a message (stored once: without a client id, one is made here); sending ends typing there. */
  send(command: SendMessage) {
    const sent = this.core.messages.send(this.user, this.identified(command))
    return this.typingIn === undefined ? sent : Effect.tap(sent, () => this.stopTyping(command.conversationId, true))
  }

  /** `send` without a fiber (see `Messages.submit`): `done` hears the outcome once. */
  submit(command: SendMessage, done: (exit: Exit.Exit<Sent, SendError>) => void, door: Transport): void {
    this.core.messages.submit(this.user, this.identified(command), (exit) => {
      if (this.typingIn !== undefined && Exit.isSuccess(exit)) this.stopTyping(command.conversationId, true)
      done(exit)
    }, door)
  }

  private identified(command: SendMessage): SendMessage {
    return command.clientMessageId === undefined ? { ...command, clientMessageId: Crypto.randomUUID() } : command
  }

  markRead(messageId: MessageId) {
    return this.core.messages.markRead(this.user, messageId)
  }

  markConversationRead(conversationId: ConversationId, upToSeq: Seq | undefined) {
    return this.core.messages.markConversationRead(this.user, conversationId, upToSeq)
  }

  /** The conversation was closed or archived: typing there ends without a word. */
  ended(conversationId: ConversationId): void {
    this.stopTyping(conversationId, false)
  }

  /** The device went away: the counterparts hear it stopped typing and left each conversation it was live in. */
  disconnected(): void {
    for (const conversationId of [...this.typingIn?.keys() ?? []]) this.stopTyping(conversationId, true)
    for (const [conversationId, recipientId] of this.live ?? []) {
      this.core.viewed(conversationId, this.user.id, -1)
      if (recipientId !== undefined) {
        this.core.publish({ _tag: "UserLeft", conversationId, userId: this.user.id, recipientId })
      }
    }
    this.live = undefined
  }

  private stopTyping(conversationId: ConversationId, tell: boolean): void {
    const state = this.typingIn?.get(conversationId)
    if (state === undefined) return
    clearTimeout(state.timer)
    this.typingIn!.delete(conversationId)
    if (tell) {
      this.core.publish({
        _tag: "UserTyping",
        conversationId,
        userId: this.user.id,
        recipientId: state.recipientId,
        isTyping: false
      })
    }
  }
}

/** What every session of an instance shares. */
interface Core {
  readonly messages: Messages
  readonly typingExpiryMs: number
  /** Publishes in the background (a signal: nothing waits for it, a failure is the bus's to log). */
  readonly publish: (event: ChatEvent) => void
  /**
   * A device of the user began (1) or stopped (-1) receiving the conversation live: across instances, whether
   * any does decides whether a message there is pushed.
   */
  readonly viewed: (conversationId: ConversationId, userId: UserId, delta: 1 | -1) => void
}

/** The live side of conversations, for every door that holds connections. */
export class Live extends Effect.Service<Live>()("Chat/Live", {
  scoped: Effect.gen(function*() {
    const messages = yield* Messages
    const bus = yield* Bus
    const config = yield* LiveConfig
    const presence = yield* PresenceStore
    const run = yield* FiberSet.makeRuntime<never>()
    // Devices of this instance live in each (conversation, user): the store hears the first come, the last go.
    const viewers = new Map<string, number>()
    const core: Core = {
      messages,
      typingExpiryMs: config.typingExpiryMs,
      publish: (event) => void run(bus.publish(event)),
      viewed: (conversationId, userId, delta) => {
        const key = `${conversationId}|${userId}`
        const n = (viewers.get(key) ?? 0) + delta
        if (n > 0) viewers.set(key, n)
        else viewers.delete(key)
        if (delta === 1 && n === 1) void run(presence.view(conversationId, userId, true))
        else if (delta === -1 && n === 0) void run(presence.view(conversationId, userId, false))
      }
    }
    return {
      /** A device of `user` connected: its session lives until the door calls `disconnected`. */
      connect: (user: User) => new LiveSession(user, core)
    } as const
  })
}) {}
