import { Clock, Duration, Effect, Layer, Schedule } from "effect"
import { RateLimited } from "../../domain/Errors.js"
import { type RateLimit, RateLimiter } from "../../domain/ports/RateLimiter.js"

interface Window {
  readonly endsAt: number
  count: number
}

const idOf = (bucket: string, key: string) => `${bucket}\u0000${key}`
const secondsLeft = (window: Window, now: number) => Math.max(1, Math.ceil((window.endsAt - now) / 1000))

/** Fixed windows in this process's memory: right for one instance; many instances share the Redis twin. */
export const layer = Layer.scoped(
  RateLimiter,
  Effect.gen(function*() {
    const windows = new Map<string, Window>()

    // Forget ended windows now and then, so that a flood of distinct keys cannot grow the map forever.
    yield* Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      for (const [key, window] of windows) if (window.endsAt <= now) windows.delete(key)
    }).pipe(Effect.repeat(Schedule.spaced(Duration.minutes(1))), Effect.delay(Duration.minutes(1)), Effect.forkScoped)

    /** Counts one hit now: the count so far, or the refusal past `max`. */
    const count = (limit: RateLimit, key: string, now: number): number | RateLimited => {
      const id = idOf(limit.bucket, key)
      let window = windows.get(id)
      if (window === undefined || window.endsAt <= now) {
        window = { endsAt: now + Duration.toMillis(limit.window), count: 0 }
        windows.set(id, window)
      }
      window.count += 1
      return window.count <= limit.max ? window.count : new RateLimited({ retryAfterSeconds: secondsLeft(window, now) })
    }

    return RateLimiter.of({
      hit: (limit, key) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          const counted = count(limit, key, now)
          return typeof counted === "number" ? Effect.succeed(counted) : Effect.fail(counted)
        }),
      hitAll: (limit, keys) => Effect.map(Clock.currentTimeMillis, (now) => keys.map((key) => count(limit, key, now))),
      peek: (limit, key) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          const window = windows.get(idOf(limit.bucket, key))
          return window === undefined || window.endsAt <= now || window.count < limit.max
            ? Effect.void
            : Effect.fail(new RateLimited({ retryAfterSeconds: secondsLeft(window, now) }))
        }),
      reset: (bucket, key) => Effect.sync(() => void windows.delete(idOf(bucket, key)))
    })
  })
)
