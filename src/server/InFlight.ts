import type { Effect } from "effect"
import { InFlightCount, Pressure } from "../ws/Overload.js"

/**
 * HTTP requests being worked on, counted across every door of the listener (the HttpServer and the fast
 * routes): beyond `max`, new ones are refused at once (503) instead of queueing without bound; once shutdown
 * began, every new one is.
 */
export class InFlight {
  private readonly count = new InFlightCount()
  /** False once shutdown began. */
  accepting = true
  /** Told of every request refused before it reached a handler (413, 503). */
  onRefused: (status: 413 | 503, reason: "body_too_large" | "in_flight_limit" | "shutting_down") => void = () => {}
  /** Refusals of the last few seconds, decaying (a backlog measure for the retry hint): from 1 s, at most 30 s. */
  private readonly pressure: Pressure

  constructor(readonly max: number) {
    this.pressure = new Pressure(max, 1000, 30_000)
  }

  /** Takes a slot; false when none is free. A taken slot must be released exactly once. */
  tryAcquire(): boolean {
    if (this.count.size >= this.max) return false
    this.count.add()
    return true
  }

  release(): void {
    this.count.remove()
  }

  /** Done once no request is being worked on (shutdown waits for it). */
  get idle(): Effect.Effect<void> {
    return this.count.idle
  }

  /** Requests being worked on now. */
  get size(): number {
    return this.count.size
  }

  /**
   * The Retry-After of a refusal (whole seconds): 1 s and more with jitter, growing with how many were refused
   * lately compared to the capacity (up to 30 s), so that a storm of clients spreads out instead of coming back
   * in waves.
   */
  retryAfterSeconds(now = Date.now()): number {
    return Math.max(1, Math.round(this.pressure.refuse(now) / 1000))
  }
}
