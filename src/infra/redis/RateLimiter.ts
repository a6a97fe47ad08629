import { Duration, Effect, Layer, Schema } from "effect"
import { RateLimited } from "../../domain/Errors.js"
import { RateLimiter } from "../../domain/ports/RateLimiter.js"
import * as MemoryRateLimiter from "../memory/RateLimiter.js"
import { batched } from "./Batched.js"
import { RedisConnection, script } from "./Redis.js"

// One round trip for a turn's hits: count each, start its window on the first one, say how long the
// window has left (KEYS[i] with window ARGV[i] answers n, ttl at 2i - 1, 2i). One Redis, not a cluster.
const hitScript = `
local out = {}
for i, key in ipairs(KEYS) do
  local ms = tonumber(ARGV[i])
  local n = redis.call('INCR', key)
  if n == 1 then redis.call('PEXPIRE', key, ms) end
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then redis.call('PEXPIRE', key, ms); ttl = ms end
  out[2 * i - 1] = n
  out[2 * i] = ttl
end
return out
`

// What a window counts and how long it has left, without counting (0 and -2 when there is none). A
// counter without expiry (never written so by hit) would refuse forever: it is dropped instead.
const peekScript = `
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
local ttl = redis.call('PTTL', KEYS[1])
if ttl == -1 then redis.call('DEL', KEYS[1]); return { 0, -2 } end
return { n, ttl }
`

/**
 * Fixed windows shared by every instance. While Redis is away each instance
 * falls back to its own in-memory windows: limits stay, only per instance.
 */
export const layer = Layer.scoped(
  RateLimiter,
  Effect.gen(function*() {
    const redis = yield* RedisConnection
    const local = yield* Effect.provide(RateLimiter, MemoryRateLimiter.layer)
    const decode = Schema.decodeUnknownPromise(Schema.Array(Schema.Number))
    const hitAll = script(redis.client, hitScript)
    const peekOne = script(redis.client, peekScript)
    const run = (hits: ReadonlyArray<{ readonly key: string; readonly windowMs: number }>) =>
      hitAll(hits.map((h) => h.key), hits.map((h) => h.windowMs)).then(decode).then((flat) =>
        hits.map((_, i) => [flat[2 * i]!, flat[2 * i + 1]!] as const)
      )
    const hitBatched = batched(run)
    const hitRemote = (key: string, windowMs: number) => Effect.tryPromise(() => hitBatched({ key, windowMs }))
    const keyOf = (bucket: string, key: string) => `${redis.settings.prefix}rate:${bucket}:${key}`
    const limited = (ttl: number) => new RateLimited({ retryAfterSeconds: Math.max(1, Math.ceil(ttl / 1000)) })

    return RateLimiter.of({
      hit: (limit, key) => {
        const windowMs = Duration.toMillis(limit.window)
        return hitRemote(keyOf(limit.bucket, key), windowMs).pipe(
          Effect.matchEffect({
            onFailure: () => local.hit(limit, key),
            onSuccess: ([count, ttl]) => count <= limit.max ? Effect.succeed(count) : Effect.fail(limited(ttl))
          })
        )
      },
      // One script for the batch's keys (with the turn's other hits); a key Redis could not count is
      // counted in this instance's memory, as `hit` does.
      hitAll: (limit, keys) => {
        const windowMs = Duration.toMillis(limit.window)
        const fromRedis = ([count, ttl]: readonly [number, number]) => count <= limit.max ? count : limited(ttl)
        return Effect.flatMap(
          Effect.promise(() =>
            Promise.all(keys.map((key) => hitBatched({ key: keyOf(limit.bucket, key), windowMs }).catch(() => undefined)))
          ),
          (answers) => {
            const missed = keys.filter((_, i) => answers[i] === undefined)
            if (missed.length === 0) return Effect.succeed(answers.map((answer) => fromRedis(answer!)))
            return Effect.map(local.hitAll(limit, missed), (counted) => {
              let next = 0
              return answers.map((answer) => answer === undefined ? counted[next++]! : fromRedis(answer))
            })
          }
        )
      },
      peek: (limit, key) =>
        Effect.tryPromise(() => peekOne([keyOf(limit.bucket, key)]).then(decode)).pipe(
          Effect.matchEffect({
            onFailure: () => local.peek(limit, key),
            onSuccess: ([count = 0, ttl = -2]) => count < limit.max || ttl === -2 ? Effect.void : Effect.fail(limited(ttl))
          })
        ),
      // Windows counted here while Redis was away are forgotten too.
      reset: (bucket, key) =>
        Effect.zipRight(
          local.reset(bucket, key),
          Effect.tryPromise(() => redis.client.del(keyOf(bucket, key))).pipe(Effect.ignore)
        )
    })
  })
)
