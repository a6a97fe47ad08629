import { expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, Option } from "effect"
import { Redis as IoRedis } from "ioredis"
import * as Crypto from "node:crypto"
import type { ChatEvent } from "../../src/domain/chat/Events.js"
import { Bus } from "../../src/domain/ports/Bus.js"
import * as RedisBus from "../../src/infra/redis/Bus.js"
import * as Redis from "../../src/infra/redis/Redis.js"
import { ownRedis } from "../support/Services.js"

const typing = (): ChatEvent => ({
  _tag: "UserTyping",
  conversationId: Crypto.randomUUID(),
  userId: Crypto.randomUUID(),
  recipientId: Crypto.randomUUID(),
  isTyping: true
} as ChatEvent)

const until = (check: () => boolean, what: string, state: () => string = () => "") =>
  Effect.promise(() =>
    new Promise<void>((resolve, reject) => {
      const started = Date.now()
      const poll = () => {
        if (check()) return resolve()
        if (Date.now() - started > 10_000) return reject(new Error(`timed out: ${what} (${state()})`))
        setTimeout(poll, 20)
      }
      poll()
    })
  )

it.live("subscribers hear of a gap when their own link to Redis came back, and when another instance could not publish for a while (starts its own Redis)", () =>
  Effect.gen(function*() {
    const redis = yield* ownRedis
    const settings = yield* Redis.RedisConfig.pipe(
      Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["REDIS_URL", redis.url], ["REDIS_PREFIX", "gap:"]]))),
      Effect.map(Option.getOrThrow)
    )
    const bus = () =>
      Effect.map(
        Layer.build(RedisBus.layer.pipe(Layer.provide(Layer.scoped(Redis.RedisConnection, Redis.make(settings))))),
        (context) => context.unsafeMap.get(Bus.key) as Bus["Type"]
      )
    const x = yield* bus()
    const y = yield* bus()
    const seen: Array<ChatEvent> = []
    let gaps = 0
    yield* y.subscribe((event) => seen.push(event), () => gaps++)
    const admin = new IoRedis(redis.url)
    yield* Effect.addFinalizer(() => Effect.sync(() => admin.disconnect()))
    yield* until(() => {
      Effect.runSync(x.publish(typing()))
      return seen.length > 0
    }, "Y hears X")
    // Publishes before X's connection was up are a gap too (harmless at start: nobody has joined yet).
    yield* Effect.sleep("200 millis")
    gaps = 0

    // X's commands connection drops (Y's subscriber stays): what X publishes meanwhile is lost to Y.
    yield* Effect.promise(() => admin.client("KILL", "TYPE", "normal", "SKIPME", "yes"))
    const before = seen.length
    yield* x.publish(typing())
    yield* until(() => {
      Effect.runSync(x.publish(typing()))
      return gaps === 1
    }, "a gap after X could publish again", () => `gaps ${gaps}, seen ${seen.length}`)
    expect(seen.length).toBeGreaterThan(before)

    // Y's own subscriber drops and comes back.
    yield* Effect.promise(() => admin.client("KILL", "TYPE", "pubsub"))
    yield* until(() => gaps === 2, "a gap after Y's subscriber is back", () => `gaps ${gaps}, seen ${seen.length}`)
    const now = seen.length
    yield* until(() => {
      Effect.runSync(x.publish(typing()))
      return seen.length > now
    }, "events flow again")
    expect(gaps).toBe(2)
  }).pipe(Effect.scoped), 30_000)
