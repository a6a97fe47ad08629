import { describe, expect, it } from "@effect/vitest"
import { Cause, ConfigProvider, Effect, Either, Exit, Layer, Logger, LogLevel, Option, Redacted } from "effect"
import type { ChatEvent } from "../../src/domain/chat/Events.js"
import { Conversations } from "../../src/domain/chat/Conversations.js"
import { Live } from "../../src/domain/chat/Live.js"
import { Messages, type SendError, type Sent } from "../../src/domain/chat/Messages.js"
import { Bus } from "../../src/domain/ports/Bus.js"
import { UsersRepo } from "../../src/domain/ports/UsersRepo.js"
import type { Email } from "../../src/domain/users/Model.js"
import { Users } from "../../src/domain/users/Users.js"
import { DomainLive } from "../../src/main.js"
import { tempDir } from "../support/TempDir.js"

// The domain as a team composes it in its own tests: `DomainLive` (every service over the ports) on the
// embedded database in a directory of its own and the in-memory bus, with no server and no socket.

const domainWith = (settings: Record<string, string>) =>
  Layer.unwrapScoped(
    Effect.map(tempDir("chat-domain-"), (dir) =>
      DomainLive.pipe(Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(
        new Map(Object.entries({
          DATA_DIR: dir,
          STORAGE_DIR: `${dir}/files`,
          JWT_SECRET: "test-secret-0123456789abcdef0123456789abcdef",
          ADMIN_EMAIL: "admin@domain.test",
          ADMIN_PASSWORD: "admin-password-1",
          WS_TYPING_EXPIRY_MS: "200",
          ...settings
        }))
      ))))
    )
  ).pipe(Layer.provide(Logger.minimumLogLevel(LogLevel.Warning)))

const TestDomain = domainWith({})
const limitedDomain = (max: number) => domainWith({ SEND_RATE_LIMIT: String(max), SEND_RATE_WINDOW: "1 minute" })

/** A user and the trainer assigned to them, and their conversation. */
const pair = Effect.gen(function*() {
  const users = yield* Users
  const admin = Option.getOrThrow(yield* (yield* UsersRepo).findByEmail("admin@domain.test" as Email))
  const person = (role: "user" | "trainer", email: string) =>
    users.create(admin, {
      email: email as Email,
      password: Redacted.make("password-123"),
      firstName: role,
      lastName: "Test",
      role
    })
  const trainer = yield* person("trainer", "trainer@domain.test")
  const { user: client } = yield* users.assignTrainer(admin, (yield* person("user", "client@domain.test")).id, trainer.id)
  const { conversation } = yield* (yield* Conversations).open(client, { participantId: trainer.id })
  return { admin, client, trainer, conversationId: conversation.id }
})

const recording = Effect.gen(function*() {
  const events: Array<ChatEvent> = []
  yield* (yield* Bus).subscribe((event) => void events.push(event))
  return events
})

describe("the domain without a server", () => {
  it.scopedLive("a send is stored once, a retry returns it; a join goes live and sees it; a close stops sends", () =>
    Effect.gen(function*() {
      const { admin, client, conversationId, trainer } = yield* pair
      const events = yield* recording
      const messages = yield* Messages
      const first = yield* messages.send(client, { conversationId, type: "text", content: "hello", clientMessageId: "c-1" })
      const retry = yield* messages.send(client, { conversationId, type: "text", content: "hello", clientMessageId: "c-1" })
      expect(first.created).toBe(true)
      expect(retry).toMatchObject({ created: false, message: { id: first.message.id, seq: 1 } })

      const session = (yield* Live).connect(trainer)
      const joined = yield* session.join(conversationId)
      expect(joined.live).toBe(true)
      expect(joined.recipientId).toBe(client.id)
      expect(joined.page.messages.map((m) => m.content)).toEqual(["hello"])
      session.wentLive(conversationId, joined.recipientId)
      yield* session.typing(conversationId, true)
      const answer = yield* session.send({ conversationId, type: "text", content: "hi back" })
      expect(answer.message.seq).toBe(2)

      yield* (yield* Conversations).close(admin, conversationId, "done")
      const refused = yield* Effect.flip(messages.send(client, { conversationId, type: "text", content: "late" }))
      expect(refused._tag === "ConversationNotActive" && refused.answer.code).toBe("ConversationClosed")
      const page = yield* messages.history(client, conversationId, { limit: 50 })
      // The close left its system message last; the refused send left nothing.
      expect(page.messages.map((m) => [m.seq, m.type])).toEqual([[1, "text"], [2, "text"], [3, "system"]])

      yield* Effect.sleep("20 millis")
      // Published: both sends (the retry again, subscribers deliver each seq once), joining, typing and its
      // end by the send, the close's system message and the close.
      expect(events.map((e) => e._tag)).toEqual([
        "MessageCreated",
        "MessageCreated",
        "UserJoined",
        "UserTyping",
        "MessageCreated",
        "UserTyping",
        "MessageCreated",
        "ConversationClosed"
      ])
    }).pipe(Effect.provide(TestDomain)), 60_000)

  it.scopedLive("concurrent sends share batches: dense seqs in arrival order, a retry in the same batch stored once", () =>
    Effect.gen(function*() {
      const { client, conversationId, trainer } = yield* pair
      const events = yield* recording
      const messages = yield* Messages
      const sends = Array.from({ length: 40 }, (_, i) => ({
        actor: i % 2 === 0 ? client : trainer,
        command: { conversationId, type: "text" as const, content: `m${i}`, clientMessageId: `c-${i}` }
      }))
      // Each send with its retry right behind it: both reach the same batch.
      const answers = yield* Effect.all(
        sends.flatMap(({ actor, command }) => [messages.send(actor, command), messages.send(actor, command)]),
        { concurrency: "unbounded" }
      )
      for (let i = 0; i < sends.length; i++) {
        const [first, retry] = [answers[2 * i]!, answers[2 * i + 1]!]
        expect(first.message.id).toBe(retry.message.id)
        expect([first.created, retry.created].sort()).toEqual([false, true])
      }
      const page = yield* messages.history(client, conversationId, { limit: 100 })
      expect(page.messages.map((m) => [m.seq, m.content])).toEqual(sends.map((s, i) => [i + 1, s.command.content]))
      yield* Effect.sleep("20 millis")
      const seqs = events.flatMap((e) => e._tag === "MessageCreated" ? [e.message.seq] : [])
      // Every message announced in seq order (the retries again, after their first).
      expect(seqs.filter((seq, i) => seqs.indexOf(seq) === i)).toEqual(sends.map((_, i) => i + 1))
    }).pipe(Effect.provide(TestDomain)), 60_000)

  it.scopedLive("submit: the same answers through a callback, refusals included", () =>
    Effect.gen(function*() {
      const { admin, client, conversationId, trainer } = yield* pair
      const messages = yield* Messages
      const submitted = (actor: typeof client, content: string) =>
        Effect.async<Exit.Exit<Sent, SendError>>((resume) =>
          messages.submit(actor, { conversationId, type: "text", content }, (exit) => resume(Effect.succeed(exit)))
        )
      // First seen here through submit (no participants known yet), then known.
      const first = yield* submitted(client, "one")
      const second = yield* submitted(trainer, "two")
      expect([first, second].map((exit) => Exit.isSuccess(exit) && exit.value.message.seq)).toEqual([1, 2])
      const stranger = yield* (yield* Users).create(admin, {
        email: "stranger@domain.test" as Email,
        password: Redacted.make("password-123"),
        firstName: "S",
        lastName: "T",
        role: "user"
      })
      const refusedStranger = yield* submitted(stranger, "nope")
      expect(Exit.isFailure(refusedStranger) && Cause.failureOption(refusedStranger.cause).pipe(Option.map((e) => e._tag)))
        .toEqual(Option.some("ConversationNotFound"))
      const refusedAdmin = yield* submitted(admin, "nope")
      expect(Exit.isFailure(refusedAdmin) && Cause.failureOption(refusedAdmin.cause).pipe(Option.map((e) => e._tag)))
        .toEqual(Option.some("Forbidden"))
      yield* (yield* Conversations).close(admin, conversationId, "done")
      const refusedClosed = yield* submitted(client, "late")
      expect(Exit.isFailure(refusedClosed) && Cause.failureOption(refusedClosed.cause).pipe(Option.map((e) => e._tag)))
        .toEqual(Option.some("ConversationNotActive"))
    }).pipe(Effect.provide(TestDomain)), 60_000)

  it.scopedLive("the send limit counts each send of a batch: past it, those sends are refused and nothing of them stored", () =>
    Effect.gen(function*() {
      const { client, conversationId } = yield* pair
      const messages = yield* Messages
      const answers = yield* Effect.all(
        Array.from({ length: 8 }, (_, i) =>
          Effect.either(messages.send(client, { conversationId, type: "text", content: `m${i}` }))),
        { concurrency: "unbounded" }
      )
      expect(answers.filter(Either.isRight)).toHaveLength(5)
      expect(answers.flatMap((a) => Either.isLeft(a) ? [a.left._tag] : [])).toEqual(["RateLimited", "RateLimited", "RateLimited"])
      const page = yield* messages.history(client, conversationId, { limit: 50 })
      expect(page.messages.map((m) => m.seq)).toEqual([1, 2, 3, 4, 5])
    }).pipe(Effect.provide(limitedDomain(5))), 60_000)
})
