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
