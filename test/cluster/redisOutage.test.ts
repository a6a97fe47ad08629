import { expect, it } from "@effect/vitest"
import { Effect, Logger, LogLevel, Schedule } from "effect"
import { history, pair } from "../support/Chat.js"
import { freshDatabase } from "../support/Database.js"
import { type Instance, startInstance } from "../support/Instances.js"
import { ownRedis } from "../support/Services.js"
import { TestServer } from "../support/TestApp.js"
import { connect, is } from "../support/Ws.js"

const sharedState = (instance: Instance) =>
  Effect.map(instance.server.request("GET", "/ready"), (reply) => reply.body.shared as string)

const until = (instance: Instance, state: string) =>
  sharedState(instance).pipe(
    Effect.flatMap((now) => now === state ? Effect.void : Effect.fail(now)),
    Effect.retry(Schedule.spaced("100 millis")),
    Effect.timeout("15 seconds")
  )

it.live.skipIf(!process.env.DATABASE_URL)(
  "Redis down: sends still commit and ack, readiness says degraded; Redis back: fan-out resumes and sinceSeq catches up (needs DATABASE_URL; starts its own Redis)",
  () =>
    Effect.gen(function*() {
      const redis = yield* ownRedis
      const env = { ...(yield* freshDatabase), REDIS_URL: redis.url, REDIS_PREFIX: "outage:" }
      const [a, b] = yield* Effect.all([startInstance(env), startInstance(env)], { concurrency: 2 })
      const { conversationId, trainer, user } = yield* Effect.provideService(pair, TestServer, a.server)
      const sender = yield* Effect.provideService(connect(user.token), TestServer, a.server)
      const receiver = yield* Effect.provideService(connect(trainer.token), TestServer, b.server)
      yield* sender.request("joinConversation", { conversationId })
      yield* receiver.request("joinConversation", { conversationId })
      const say = (i: number) => sender.request("sendMessage", { conversationId, content: `m${i}`, clientMessageId: `o${i}` })

      expect((yield* say(1)).event).toBe("ack")
      yield* receiver.next(is("newMessage", (m) => m.seq === 1))
      // History pages: B keeps its newest page of this conversation.
      const seqsOn = (instance: Instance) =>
        Effect.provideService(history(trainer.token, conversationId), TestServer, instance.server).pipe(
          Effect.map((reply) => (reply.body.messages as Array<{ seq: number }>).map((m) => m.seq))
        )
      expect(yield* seqsOn(b)).toEqual([1])
      expect(yield* seqsOn(b)).toEqual([1])

      yield* redis.kill
      yield* until(a, "redis-down")
      expect((yield* a.server.request("GET", "/ready")).body.status).toBe("degraded")
      const acked: Array<string> = []
      for (const i of [2, 3, 4]) {
        const reply = yield* say(i)
        expect(reply.event).toBe("ack")
        acked.push(reply.data.message.id)
      }
      // This instance's own sockets still get them.
      yield* sender.next(is("newMessage", (m) => m.seq === 4))
      // Without Redis no kept page is served: both read Postgres.
      expect(yield* seqsOn(a)).toEqual([1, 2, 3, 4])
      expect(yield* seqsOn(b)).toEqual([1, 2, 3, 4])

      yield* redis.start
      yield* until(a, "redis-up")
      yield* until(b, "redis-up")
      // The new Redis starts its counters again from nothing; B's page kept from before the outage must
      // not pass for current (each reconnection is a new epoch).
      expect(yield* seqsOn(b)).toEqual([1, 2, 3, 4])
      // The subscriber reconnects by itself: fan-out resumes.
      expect((yield* say(5)).event).toBe("ack")
      yield* receiver.next(is("newMessage", (m) => m.seq === 5), 1000)
      // What B's socket missed, it catches up by sinceSeq.
      yield* receiver.request("joinConversation", { conversationId, sinceSeq: 1 })
      const page = yield* receiver.next(is("conversationHistory", (h) => h.fromSeq === 2))
      expect(page.data.messages.map((m: { seq: number }) => m.seq)).toEqual([2, 3, 4, 5])
      const stored = (yield* Effect.provideService(history(user.token, conversationId), TestServer, a.server)).body.messages
      for (const id of acked) expect(stored.some((m: { id: string }) => m.id === id)).toBe(true)
      expect(stored.map((m: { seq: number }) => m.seq)).toEqual([1, 2, 3, 4, 5])
      expect(yield* seqsOn(b)).toEqual([1, 2, 3, 4, 5])
    }).pipe(Effect.scoped, Effect.provide(Logger.minimumLogLevel(LogLevel.Warning))),
  90_000
)

it.live.skipIf(!process.env.DATABASE_URL)(
  "Redis back after an outage: sockets joined on the other instance get resync with the conversation's last seq, and catch up by sinceSeq (needs DATABASE_URL; starts its own Redis)",
  () =>
    Effect.gen(function*() {
      const redis = yield* ownRedis
      const env = { ...(yield* freshDatabase), REDIS_URL: redis.url, REDIS_PREFIX: "resync:" }
      const [a, b] = yield* Effect.all([startInstance(env), startInstance(env)], { concurrency: 2 })
      const { conversationId, trainer, user } = yield* Effect.provideService(pair, TestServer, a.server)
      const quiet = yield* Effect.provideService(pair, TestServer, a.server)
      const sender = yield* Effect.provideService(connect(user.token), TestServer, a.server)
      const receiver = yield* Effect.provideService(connect(trainer.token), TestServer, b.server)
      const other = yield* Effect.provideService(connect(quiet.trainer.token), TestServer, b.server)
      yield* sender.request("joinConversation", { conversationId })
      yield* receiver.request("joinConversation", { conversationId })
      yield* other.request("joinConversation", { conversationId: quiet.conversationId })
      const say = (i: number) => sender.request("sendMessage", { conversationId, content: `m${i}`, clientMessageId: `r${i}` })
      expect((yield* say(1)).event).toBe("ack")
      yield* receiver.next(is("newMessage", (m) => m.seq === 1))

      yield* redis.kill
      yield* until(a, "redis-down")
      yield* until(b, "redis-down")
      expect((yield* say(2)).event).toBe("ack")
      expect((yield* say(3)).event).toBe("ack")
      yield* redis.start
      yield* until(b, "redis-up")

      // B's socket never heard of 2 and 3: it is told to resume, with the last seq from the database.
      const resync = yield* receiver.next(is("resync", (d) => d.conversationId === conversationId), 10_000)
      expect(resync.data).toEqual({ conversationId, lastSeq: 3 })
      expect(receiver.frames.some((f) => f.event === "newMessage" && f.data.seq > 1)).toBe(false)
      // Every joined conversation of the instance gets one, quiet ones too.
      expect((yield* other.next(is("resync"), 5000)).data).toEqual({ conversationId: quiet.conversationId, lastSeq: 0 })
      yield* receiver.request("joinConversation", { conversationId, sinceSeq: 1 })
      const page = yield* receiver.next(is("conversationHistory", (h) => h.fromSeq === 2))
      expect(page.data.messages.map((m: { seq: number }) => m.seq)).toEqual([2, 3])
      // And it is live again.
      expect((yield* say(4)).event).toBe("ack")
      yield* receiver.next(is("newMessage", (m) => m.seq === 4), 3000)
    }).pipe(Effect.scoped, Effect.provide(Logger.minimumLogLevel(LogLevel.Warning))),
  90_000
)
