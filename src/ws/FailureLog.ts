/**
 * Failures logged once per kind and period: the first of a kind is logged in full, the rest of the period
 * only counted, and a summary line with the count follows when the period ends. An outage that fails
 * thousands of frames writes a few lines, not a stack trace per frame.
 */
export class FailureLog {
  private readonly kinds = new Map<string, { readonly until: number; suppressed: number; timer?: NodeJS.Timeout }>()

  constructor(
    private readonly periodMs: number,
    private readonly summary: (kind: string, suppressed: number, periodMs: number) => void,
    private readonly maxKinds = 256
  ) {}

  /** Whether this failure of `kind` is to be logged now (true) or only counted (false). */
  take(kind: string, now = Date.now()): boolean {
    const state = this.kinds.get(kind)
    if (state !== undefined && now < state.until) {
      if (state.suppressed++ === 0) {
        state.timer = setTimeout(() => this.flush(kind), state.until - now)
        state.timer.unref()
      }
      return false
    }
    if (state !== undefined) this.flush(kind)
    // Kinds come from code (where, and the class of what failed), but stay bounded all the same.
    if (this.kinds.size >= this.maxKinds) this.clear()
    this.kinds.set(kind, { until: now + this.periodMs, suppressed: 0 })
    return true
  }

  private flush(kind: string) {
    const state = this.kinds.get(kind)
    if (state === undefined) return
    clearTimeout(state.timer)
    if (state.suppressed > 0) this.summary(kind, state.suppressed, this.periodMs)
    this.kinds.delete(kind)
  }

  clear() {
    for (const kind of [...this.kinds.keys()]) this.flush(kind)
  }
}
