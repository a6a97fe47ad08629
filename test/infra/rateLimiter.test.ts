import { expect, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Exit, Layer, Option } from "effect"
import * as Crypto from "node:crypto"
import { RateLimiter } from "../../src/domain/ports/RateLimiter.js"
import * as MemoryRateLimiter from "../../src/infra/memory/RateLimiter.js"
import * as Redis from "../../src/infra/redis/Redis.js"
import * as RedisRateLimiter from "../../src/infra/redis/RateLimiter.js"

const url = process.env.REDIS_URL

/** hit counts and refuses past max; peek refuses at max without counting; reset forgets. */
const contract = (a: RateLimiter["Type"], b: RateLimiter["Type"]) =>
  Effect.gen(function*() {
    const limit = { bucket: "test", max: 2, window: Duration.minutes(1) }
    const key = Crypto.randomUUID()
    expect(yield* a.hit(limit, key)).toBe(1)
    yield* b.peek(limit, key)
    yield* b.peek(limit, key)
    expect(yield* b.hit(limit, key)).toBe(2)
    const peeked = yield* Effect.exit(a.peek(limit, key))
    expect(Exit.isFailure(peeked)).toBe(true)
    const over = yield* Effect.flip(b.hit(limit, key))
    expect(over.retryAfterSeconds).toBeGreaterThan(50)
    expect(over.retryAfterSeconds).toBeLessThanOrEqual(60)
    yield* a.reset(limit.bucket, key)
    yield* b.peek(limit, key)
    expect(yield* b.hit(limit, key)).toBe(1)
  })

it.live("memory: hit, peek and reset", () =>
  Effect.gen(function*() {
    const limiter = yield* Effect.provide(RateLimiter, MemoryRateLimiter.layer)
    yield* contract(limiter, limiter)
  }).pipe(Effect.scoped))

it.live.skipIf(!url)("Redis: two instances share hit, peek and reset (needs REDIS_URL)", () =>
  Effect.gen(function*() {
    const prefix = `chat-test:${Crypto.randomBytes(6).toString("hex")}:`
    const settings = yield* Redis.RedisConfig.pipe(
      Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["REDIS_URL", url!], ["REDIS_PREFIX", prefix]]))),
      Effect.map(Option.getOrThrow)
    )
    // An instance once its connection is up (before, it counts in its own memory, by design).
    const instance = Effect.gen(function*() {
      const connection = yield* Redis.make(settings)
      const client = connection.client
      if (client.status !== "ready") yield* Effect.async<void>((resume) => void client.once("ready", () => resume(Effect.void)))
      return yield* Effect.provide(RateLimiter, Layer.provide(RedisRateLimiter.layer, Layer.succeed(Redis.RedisConnection, connection)))
    })
    const a = yield* instance
    const b = yield* instance
    yield* contract(a, b)
  }).pipe(Effect.scoped))
