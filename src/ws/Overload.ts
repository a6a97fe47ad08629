import { Effect } from "effect"
import { retryAfterMs } from "../infra/Unavailable.js"

/**
 * How far demand runs over the in-flight limit: refusals counted with a one-second half-life. The
 * `Overloaded` hint grows with it and is jittered, so that clients told to come back spread out instead of
 * returning together in waves.
 */
export class Pressure {
  private level = 0
  private updatedAt = Date.now()

  constructor(
    private readonly limit: number,
    private readonly baseMs = 250,
    private readonly maxMs = 30_000,
    private readonly halfLifeMs = 1000
  ) {}

  /** Counts one refusal and gives its retry hint, in milliseconds. */
  refuse(now = Date.now()): number {
    this.level = this.level * 0.5 ** (Math.max(0, now - this.updatedAt) / this.halfLifeMs) + 1
    this.updatedAt = now
    const base = this.baseMs * (1 + this.level / Math.max(1, this.limit))
    return Math.min(this.maxMs, retryAfterMs(base, 1))
  }
}

/** Work in flight: a count, and a wait for it to come back to zero (shutdown waits on it). */
export class InFlightCount {
  private count = 0
  private readonly waiters: Array<() => void> = []

  get size(): number {
    return this.count
  }

  add(): void {
    this.count++
  }

  /** One piece of work ended: every `idle` waiting hears it when none is left. */
  remove(): void {
    this.count--
    if (this.count === 0 && this.waiters.length > 0) for (const wake of this.waiters.splice(0)) wake()
  }

  /** Done once nothing is in flight. */
  readonly idle: Effect.Effect<void> = Effect.async<void>((resume) => {
    if (this.count === 0) return resume(Effect.void)
    const wake = () => resume(Effect.void)
    this.waiters.push(wake)
    return Effect.sync(() => {
      const at = this.waiters.indexOf(wake)
      if (at >= 0) this.waiters.splice(at, 1)
    })
  })
}
