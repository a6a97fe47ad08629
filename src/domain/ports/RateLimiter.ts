import { Context, type Duration, type Effect } from "effect"
import type { RateLimited } from "../Errors.js"

export interface RateLimit {
  /** Groups keys so that one limit never spends another's budget, e.g. "login:ip". */
  readonly bucket: string
  readonly max: number
  readonly window: Duration.Duration
}

/**
 * Fixed-window counters: the `max + 1`-th hit of `key` inside one window fails
 * with the seconds left until the window ends.
 */
export class RateLimiter extends Context.Tag("Ports/RateLimiter")<RateLimiter, {
  /** Counts one hit; the count so far in this window, or `RateLimited` past `max`. */
  readonly hit: (limit: RateLimit, key: string) => Effect.Effect<number, RateLimited>
  /**
   * Counts one hit of each key, in order (a key twice counts twice): for each, its count so far or the
   * `RateLimited` it gets. One step for many callers (a batch of sends), however the counts are kept.
   */
  readonly hitAll: (
    limit: RateLimit,
    keys: ReadonlyArray<string>
  ) => Effect.Effect<ReadonlyArray<number | RateLimited>>
  /** `RateLimited` when this window already counts `max` hits; counts nothing. */
  readonly peek: (limit: RateLimit, key: string) => Effect.Effect<void, RateLimited>
  /** Forgets `key`'s window in `bucket` (a successful login clears its failures). */
  readonly reset: (bucket: string, key: string) => Effect.Effect<void>
}>() {}
