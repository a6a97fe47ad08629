import { retryAfterMs } from "../infra/Unavailable.js"

/**
 * HTTP requests being worked on, counted across every door of the listener (the generic bridge and
 * the fast routes): beyond `max`, new ones are refused at once (503) instead of queueing without bound.
 */
export class InFlight {
  private count = 0
  /** Refusals of the last few seconds, decaying (a backlog measure for the retry hint). */
  private pressure = 0
  private pressureAt = 0

  constructor(readonly max: number) {}

  /** Takes a slot; false when none is free. A taken slot must be released exactly once. */
  tryAcquire(): boolean {
    if (this.count >= this.max) return false
    this.count++
    return true
  }

  release(): void {
    this.count--
  }

  /** Requests being worked on now. */
  get size(): number {
    return this.count
  }

  /**
   * The Retry-After of a refusal (whole seconds): 1 s and more with jitter, growing with how many were refused
   * lately compared to the capacity (up to 30 s), so that a storm of clients spreads out instead of coming back
   * in waves.
   */
  retryAfterSeconds(now = Date.now()): number {
    this.pressure = this.pressure * Math.exp(-(now - this.pressureAt) / 2000) + 1
    this.pressureAt = now
    const baseMs = 1000 * Math.min(1 + this.pressure / Math.max(1, this.max), 15)
    return Math.max(1, Math.round(retryAfterMs(baseMs, 1) / 1000))
  }
}
