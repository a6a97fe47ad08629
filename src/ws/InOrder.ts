/**
 * Puts each conversation's messages back in seq order before they reach
 * sockets. Senders publish after their commit, and two commits of one
 * conversation may publish in the other order; a message that arrives ahead
 * of a gap is held until the gap fills or `holdMs` passes (then `onGap` is
 * told, and clients fill it with `sinceSeq`). Nothing is dropped: a message that comes after
 * its successors were delivered goes out at once.
 */
export class InOrder<M extends { readonly conversationId: string; readonly seq: number }> {
  private readonly last = new Map<M["conversationId"], number>()
  private readonly held = new Map<M["conversationId"], { readonly messages: Map<number, M>; readonly timer: NodeJS.Timeout }>()

  constructor(
    private readonly deliver: (message: M) => void,
    private readonly holdMs: number,
    private readonly capacity = 100_000,
    /** Called when a gap did not fill in time (a publisher died between its commit and its publish, say). */
    private readonly onGap?: (conversationId: M["conversationId"]) => void
  ) {}

  push(message: M, replay = false): void {
    const { conversationId, seq } = message
    const last = this.last.get(conversationId)
    // A message announced again (a retried send): delivered only if it is still ahead of what went out; a
    // gap it left behind was already followed by a resync.
    if (replay && last !== undefined && seq <= last) return
    if (last !== undefined && seq > last + 1) return this.hold(message)
    this.deliver(message)
    if (last === undefined || seq > last) {
      this.advance(conversationId, seq)
      this.flush(conversationId, false)
    }
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
      if (seq > last + 1) gap = true
      this.deliver(waiting.messages.get(seq)!)
      waiting.messages.delete(seq)
      if (seq > last) this.advance(conversationId, seq)
    }
    if (waiting.messages.size === 0) {
      clearTimeout(waiting.timer)
      this.held.delete(conversationId)
    }
    if (gap) this.onGap?.(conversationId)
  }

  private advance(conversationId: M["conversationId"], seq: number): void {
    this.last.delete(conversationId)
    this.last.set(conversationId, seq)
    if (this.last.size > this.capacity) {
      const oldest = this.last.keys().next().value
      if (oldest !== undefined) this.last.delete(oldest)
    }
  }
}
