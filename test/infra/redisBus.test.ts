import { expect, it } from "@effect/vitest"
import { ConfigProvider, Deferred, Effect, Layer, Option } from "effect"
import { Redis as IoRedis } from "ioredis"
import * as Crypto from "node:crypto"
import type { ChatEvent } from "../../src/domain/chat/Events.js"
import { Bus } from "../../src/domain/ports/Bus.js"
import * as RedisBus from "../../src/infra/redis/Bus.js"
import * as Redis from "../../src/infra/redis/Redis.js"

const url = process.env.REDIS_URL
const why = "needs REDIS_URL: the bus under test is Redis pub/sub"

const typing = (): ChatEvent => ({
  _tag: "UserTyping",
  conversationId: Crypto.randomUUID(),
  userId: Crypto.randomUUID(),
  recipientId: Crypto.randomUUID(),
  isTyping: true
} as ChatEvent)
const userOf = (event: ChatEvent | undefined) => event !== undefined && "userId" in event ? event.userId : undefined

it.live.skipIf(!url)(`events of one turn share a publish, in order; one-event envelopes of earlier versions are read (${why})`, () =>
  Effect.gen(function*() {
    const prefix = `chat-test:${Crypto.randomBytes(6).toString("hex")}:`
    const settings = yield* Redis.RedisConfig.pipe(
      Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["REDIS_URL", url!], ["REDIS_PREFIX", prefix]]))),
      Effect.map(Option.getOrThrow)
    )
    const bus = (yield* Layer.build(
      RedisBus.layer.pipe(Layer.provide(Layer.scoped(Redis.RedisConnection, Redis.make(settings))))
    )).unsafeMap.get(Bus.key) as Bus["Type"]

    // A raw connection watches the channel and plays an instance of an earlier version.
    const watcher = new IoRedis(url!)
    const other = new IoRedis(url!)
    yield* Effect.addFinalizer(() => Effect.sync(() => (watcher.disconnect(), other.disconnect())))
    const raw: Array<string> = []
    watcher.on("message", (_channel: string, text: string) => raw.push(text))
    yield* Effect.promise(() => watcher.subscribe(`${prefix}events`))

    const seen: Array<ChatEvent> = []
    const fourth = yield* Deferred.make<void>()
    yield* bus.subscribe((event) => {
      seen.push(event)
      if (seen.length === 4) Deferred.unsafeDone(fourth, Effect.void)
    })

    // Three events in one turn: delivered here at once, and one envelope on Redis.
    const events = [typing(), typing(), typing()]
    yield* Effect.forEach(events, (event) => bus.publish(event))
    expect(seen.map(userOf)).toEqual(events.map(userOf))
    yield* Effect.sleep("300 millis")
    expect(raw).toHaveLength(1)
    expect(JSON.parse(raw[0]!).events.map((e: { userId: string }) => e.userId)).toEqual(events.map(userOf))

    // An earlier version's envelope (one event) from another instance reaches the subscribers.
    const old = typing()
    yield* Effect.promise(() =>
      other.publish(`${prefix}events`, JSON.stringify({ from: "an-older-instance", event: old }))
    )
    yield* Deferred.await(fourth).pipe(Effect.timeout("3 seconds"))
    expect(userOf(seen.at(-1))).toBe(userOf(old))
  }).pipe(Effect.scoped))
