/** A per-socket rate limit: `perSecond` on average, bursts up to `burst`. */
export class TokenBucket {
  private tokens: number
  private updatedAt = Date.now()

  constructor(private readonly perSecond: number, private readonly burst: number) {
    this.tokens = burst
  }

  /** Takes one token: 0 when allowed, otherwise how many milliseconds until one is available. */
  take(now = Date.now()): number {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.updatedAt) / 1000) * this.perSecond)
    this.updatedAt = now
    if (this.tokens >= 1) {
      this.tokens -= 1
      return 0
    }
    return Math.ceil(((1 - this.tokens) / this.perSecond) * 1000)
  }
}
