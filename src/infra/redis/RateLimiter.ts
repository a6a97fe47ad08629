import { Duration, Effect, Layer, Schema } from "effect"
import * as Crypto from "node:crypto"
import { RateLimited } from "../../domain/Errors.js"
import { RateLimiter } from "../../domain/ports/RateLimiter.js"
import * as MemoryRateLimiter from "../memory/RateLimiter.js"
import { RedisConnection } from "./Redis.js"

// One round trip: count the hit, start the window on the first one, say how long the window has left.
const hitScript = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {n, ttl}
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
    const decode = Schema.decodeUnknown(Schema.Tuple(Schema.Number, Schema.Number))
    // Every send is counted: the script goes by its digest (EVALSHA), its text only when Redis lacks it.
    const sha = Crypto.createHash("sha1").update(hitScript).digest("hex")
    const run = (key: string, windowMs: number) =>
      redis.client.evalsha(sha, 1, key, windowMs).catch((error: unknown) =>
        String(error).includes("NOSCRIPT") ? redis.client.eval(hitScript, 1, key, windowMs) : Promise.reject(error)
      )
    const hitRemote = (key: string, windowMs: number) =>
      Effect.tryPromise(() => run(key, windowMs)).pipe(Effect.flatMap(decode))

    return RateLimiter.of({
      hit: (limit, key) => {
        const windowMs = Duration.toMillis(limit.window)
        return hitRemote(`${redis.settings.prefix}rate:${limit.bucket}:${key}`, windowMs).pipe(
          Effect.matchEffect({
            onFailure: () => local.hit(limit, key),
            onSuccess: ([count, ttl]) =>
              count <= limit.max
                ? Effect.void
                : Effect.fail(new RateLimited({ retryAfterSeconds: Math.max(1, Math.ceil(ttl / 1000)) }))
          })
        )
      }
    })
  })
)
