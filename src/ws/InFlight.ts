/**
 * HTTP requests being worked on, counted across every door of the listener (the generic bridge and
 * the fast routes): beyond `max`, new ones are refused at once (503) instead of queueing without bound.
 */
export class InFlight {
  private count = 0

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
}
