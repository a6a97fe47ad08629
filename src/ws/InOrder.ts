/**
 * Puts each conversation's messages back in seq order before they reach
 * sockets, each once. Senders publish after their commit, and two commits of one
 * conversation may publish in the other order; a message that arrives ahead
 * of a gap is held until the gap fills or `holdMs` passes (then `onGap` is
 * told, and clients fill it with `sinceSeq`). A message skipped so, or from below
 * the first one seen, still goes out when it comes late; one that was delivered
 * already (a retried send announced again, or its first announcement arriving
 * after that) is dropped.
 */
export class InOrder<M extends { readonly conversationId: string; readonly seq: number }> {
  private readonly last = new Map<M["conversationId"], number>()
  private readonly held = new Map<M["conversationId"], { readonly messages: Map<number, M>; readonly timer: NodeJS.Timeout }>()
  /** Seqs passed over when a hold timed out (rare, and bounded per conversation). */
  private readonly skipped = new Map<M["conversationId"], Set<number>>()
  /**
   * The lowest seq delivered of each conversation: what lies below it was never seen here (published before
   * this instance heard of the conversation, or overtaken by a later one), so it still goes out when it comes.
   */
  private readonly first = new Map<M["conversationId"], number>()

  constructor(
    private readonly deliver: (message: M) => void,
    private readonly holdMs: number,
    private readonly capacity = 100_000,
    /** Called when a gap did not fill in time (a publisher died between its commit and its publish, say). */
    private readonly onGap?: (conversationId: M["conversationId"]) => void,
    private readonly maxSkipped = 1_000
  ) {}

  push(message: M): void {
    const { conversationId, seq } = message
    const last = this.last.get(conversationId)
    if (last !== undefined && seq <= last) {
      const first = this.first.get(conversationId) ?? 1
      if (seq < first) {
        if (seq === first - 1) this.first.set(conversationId, seq)
        return this.deliver(message)
      }
      const skipped = this.skipped.get(conversationId)
      if (skipped === undefined || !skipped.delete(seq)) return
      if (skipped.size === 0) this.skipped.delete(conversationId)
      return this.deliver(message)
    }
    if (last !== undefined && seq > last + 1) return this.hold(message)
    if (last === undefined) this.first.set(conversationId, seq)
    this.deliver(message)
    this.advance(conversationId, seq)
    this.flush(conversationId, false)
  }

  private hold(message: M): void {
    const waiting = this.held.get(message.conversationId)
    if (waiting !== undefined) {
      waiting.messages.set(message.seq, message)
      return
    }
    const timer = setTimeout(() => this.flush(message.conversationId, true), this.holdMs)
    timer.unref()
    this.held.set(message.conversationId, { messages: new Map([[message.seq, message]]), timer })
  }

  /** Delivers what is now contiguous; on timeout, everything held, in order. */
  private flush(conversationId: M["conversationId"], timedOut: boolean): void {
    const waiting = this.held.get(conversationId)
    if (waiting === undefined) return
    const seqs = [...waiting.messages.keys()].sort((a, b) => a - b)
    let gap = false
    for (const seq of seqs) {
      const last = this.last.get(conversationId) ?? seq - 1
      if (!timedOut && seq !== last + 1) break
      if (seq > last + 1) {
        gap = true
        this.skip(conversationId, last + 1, seq - 1)
      }
      if (seq > last) {
        this.deliver(waiting.messages.get(seq)!)
        this.advance(conversationId, seq)
      }
      waiting.messages.delete(seq)
    }
    if (waiting.messages.size === 0) {
      clearTimeout(waiting.timer)
      this.held.delete(conversationId)
    }
    if (gap) this.onGap?.(conversationId)
  }

  private skip(conversationId: M["conversationId"], from: number, to: number): void {
    const skipped = this.skipped.get(conversationId) ?? new Set<number>()
    // Beyond the bound, a late one is dropped: the resync that `onGap` brings covers it.
    for (let seq = from; seq <= to && skipped.size < this.maxSkipped; seq++) skipped.add(seq)
    if (skipped.size > 0) this.skipped.set(conversationId, skipped)
  }

  private advance(conversationId: M["conversationId"], seq: number): void {
    this.last.delete(conversationId)
    this.last.set(conversationId, seq)
    if (this.last.size > this.capacity) {
      const oldest = this.last.keys().next().value
      if (oldest !== undefined) {
        this.last.delete(oldest)
        this.skipped.delete(oldest)
        this.first.delete(oldest)
      }
    }
  }
}
