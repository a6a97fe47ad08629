import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer } from "effect"
import { Forbidden } from "../../src/domain/Errors.js"
import { ConversationNotFound } from "../../src/domain/chat/Errors.js"
import type { ChatEvent } from "../../src/domain/chat/Events.js"
import { Live } from "../../src/domain/chat/Live.js"
import { Messages, type SendMessage } from "../../src/domain/chat/Messages.js"
import type { ConversationId, Message, Seq } from "../../src/domain/chat/Model.js"
import { Bus } from "../../src/domain/ports/Bus.js"
import type { User, UserId } from "../../src/domain/users/Model.js"
import { PresenceStore } from "../../src/domain/ports/PresenceStore.js"
import * as MemoryBus from "../../src/infra/memory/Bus.js"
import * as MemoryPresenceStore from "../../src/infra/memory/PresenceStore.js"

// Unit tests of the live side of conversations: the domain service over an in-memory bus and a stand-in for
// Messages (access by a fixed table, a fixed history page, sends that echo their command). No server.

const uuid = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`
const client = { id: uuid(1) as UserId, role: "user" } as User
const trainer = { id: uuid(2) as UserId, role: "trainer" } as User
const admin = { id: uuid(3) as UserId, role: "admin" } as User
const conversation = uuid(10) as ConversationId
const unknown = uuid(11) as ConversationId

const sends: Array<SendMessage> = []
const messages = {
  access: (actor: User, id: ConversationId) =>
    id !== conversation
      ? Effect.fail(new ConversationNotFound({ id }))
      : Effect.succeed({
        participants: { userId: client.id, trainerId: trainer.id },
        level: actor.role === "admin" ? "admin" as const : "participant" as const
      }),
  history: (_actor: User, _id: ConversationId, query: { readonly afterSeq?: Seq; readonly limit: number }) =>
    Effect.succeed({ messages: [] as Array<Message>, hasMore: query.afterSeq !== undefined && query.afterSeq < 5 }),
  send: (_actor: User, command: SendMessage) =>
    Effect.sync(() => {
      sends.push(command)
      return { message: { conversationId: command.conversationId } as Message, created: true }
    })
} as unknown as Messages

const TestLive = Live.Default.pipe(
  Layer.provide(Layer.succeed(Messages, messages)),
  Layer.provideMerge(MemoryBus.layer),
  Layer.provideMerge(MemoryPresenceStore.layer),
  Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["WS_TYPING_EXPIRY_MS", "200"]]))))
)

/** Every event published from now on, as it is published. */
const recording = Effect.gen(function*() {
  const events: Array<ChatEvent> = []
  const bus = yield* Bus
  yield* bus.subscribe((event) => void events.push(event))
  return events
})

const settle = Effect.sleep("20 millis")

describe("Live", () => {
  it.scopedLive("a participant's join gives its page and goes live at once; going live tells the counterpart", () =>
    Effect.gen(function*() {
      const events = yield* recording
      const session = (yield* Live).connect(client)
      const joined = yield* session.join(conversation)
      expect(joined).toMatchObject({ live: true, recipientId: trainer.id, page: { hasMore: false } })
      session.wentLive(conversation, joined.recipientId)
      yield* settle
      expect(events).toEqual([{ _tag: "UserJoined", conversationId: conversation, userId: client.id, recipientId: trainer.id }])
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("a resume whose page is not the last does not go live; an admin reading along tells no one", () =>
    Effect.gen(function*() {
      const events = yield* recording
      const live = yield* Live
      const resumed = yield* live.connect(client).join(conversation, 2 as Seq)
      expect(resumed.live).toBe(false)
      const watching = live.connect(admin)
      const joined = yield* watching.join(conversation)
      expect(joined.recipientId).toBeUndefined()
      watching.wentLive(conversation, joined.recipientId)
      const failed = yield* Effect.flip(live.connect(client).join(unknown))
      expect(failed.answer.code).toBe("ConversationNotFound")
      yield* settle
      expect(events).toEqual([])
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("typing is relayed when it starts, throttled while it goes on, and ends by itself", () =>
    Effect.gen(function*() {
      const events = yield* recording
      const session = (yield* Live).connect(client)
      expect(yield* session.typing(conversation, true)).toEqual({ isTyping: true })
      yield* session.typing(conversation, true)
      yield* settle
      expect(events.map((e) => e._tag === "UserTyping" && e.isTyping)).toEqual([true])
      // Not refreshed within the expiry (200 ms): the counterpart hears it stopped.
      yield* Effect.sleep("300 millis")
      expect(events.map((e) => e._tag === "UserTyping" && e.isTyping)).toEqual([true, false])
      expect(events[1]).toMatchObject({ recipientId: trainer.id, userId: client.id })
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("only participants type; a send ends typing and gets a client id when it has none", () =>
    Effect.gen(function*() {
      const events = yield* recording
      const live = yield* Live
      const refused = yield* Effect.flip(live.connect(admin).typing(conversation, true))
      expect(refused).toBeInstanceOf(Forbidden)
      expect(refused.answer).toEqual({ code: "Forbidden", message: "Only participants can type here" })
      const session = live.connect(client)
      yield* session.typing(conversation, true)
      yield* session.send({ conversationId: conversation, type: "text", content: "hi" })
      yield* session.send({ conversationId: conversation, type: "text", content: "again", clientMessageId: "mine" })
      yield* settle
      expect(events.map((e) => e._tag === "UserTyping" && e.isTyping)).toEqual([true, false])
      expect(sends[0]!.clientMessageId).toMatch(/^[0-9a-f-]{36}$/)
      expect(sends[1]!.clientMessageId).toBe("mine")
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("leaving tells the counterpart once; a disconnect ends typing and leaves what was live", () =>
    Effect.gen(function*() {
      const events = yield* recording
      const live = yield* Live
      const session = live.connect(client)
      session.wentLive(conversation, trainer.id)
      expect(yield* session.leave(conversation)).toEqual({ left: true })
      expect(yield* session.leave(conversation)).toEqual({ left: false })
      const other = live.connect(trainer)
      other.wentLive(conversation, client.id)
      yield* other.typing(conversation, true)
      other.disconnected()
      yield* settle
      expect(events.map((e) => e._tag)).toEqual(["UserJoined", "UserLeft", "UserJoined", "UserTyping", "UserTyping", "UserLeft"])
      expect(events.slice(3).map((e) => "recipientId" in e && e.recipientId)).toEqual([client.id, client.id, client.id])
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("a closed conversation ends typing without a word", () =>
    Effect.gen(function*() {
      const events = yield* recording
      const session = (yield* Live).connect(client)
      yield* session.typing(conversation, true)
      session.ended(conversation)
      yield* Effect.sleep("300 millis")
      expect(events.map((e) => e._tag === "UserTyping" && e.isTyping)).toEqual([true])
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("a user views a conversation while any of their devices is live in it, until the last one leaves", () =>
    Effect.gen(function*() {
      const live = yield* Live
      const presence = yield* PresenceStore
      const viewing = Effect.map(presence.viewing([{ conversationId: conversation, userId: trainer.id }]), ([v]) => v)
      const phone = live.connect(trainer)
      const laptop = live.connect(trainer)
      expect(yield* viewing).toBe(false)
      phone.wentLive(conversation, client.id)
      // Joined again (a resume): still one view, not two.
      phone.wentLive(conversation, client.id)
      laptop.wentLive(conversation, client.id)
      yield* settle
      expect(yield* viewing).toBe(true)
      yield* phone.leave(conversation)
      yield* settle
      expect(yield* viewing).toBe(true)
      laptop.paused(conversation)
      yield* settle
      expect(yield* viewing).toBe(false)
      laptop.wentLive(conversation, client.id)
      yield* settle
      expect(yield* viewing).toBe(true)
      laptop.disconnected()
      yield* settle
      expect(yield* viewing).toBe(false)
    }).pipe(Effect.provide(TestLive)))
})
