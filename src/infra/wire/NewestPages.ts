import type { ConversationId } from "../../domain/chat/Model.js"
import type { PageJson } from "./MessageJson.js"

interface Entry {
  readonly version: string
  readonly limit: number
  readonly page: PageJson
  readonly size: number
  readonly storedAt: number
}

/**
 * The newest history page of the conversations read most, as JSON texts, each under the log's
 * version it was read at (see `PageVersions`): a page is served only while that version is
 * current, and for at most `ttlMs` (a bound on staleness should a version change be lost).
 * Least recently used pages go first once their texts pass `maxChars` in all.
 */
export class NewestPages {
  private readonly entries = new Map<ConversationId, Entry>()
  private chars = 0

  constructor(private readonly maxChars: number, private readonly ttlMs: number) {}

  get(id: ConversationId, version: string, limit: number, now: number): PageJson | undefined {
    const entry = this.entries.get(id)
    if (entry === undefined) return undefined
    if (entry.version !== version || now - entry.storedAt > this.ttlMs) {
      this.remove(id, entry)
      return undefined
    }
    const { hasMore, messages } = entry.page
    // A longer page than the one kept is known only when the kept one is the whole log.
    if (limit > entry.limit && hasMore) return undefined
    this.entries.delete(id)
    this.entries.set(id, entry)
    return messages.length <= limit
      ? entry.page
      : { messages: messages.slice(messages.length - limit), hasMore: true }
  }

  set(id: ConversationId, version: string, limit: number, page: PageJson, now: number): void {
    const previous = this.entries.get(id)
    if (previous !== undefined) this.remove(id, previous)
    const size = page.messages.reduce((sum, text) => sum + text.length, 0)
    if (size > this.maxChars / 4) return
    this.entries.set(id, { version, limit, page, size, storedAt: now })
    this.chars += size
    for (const [oldest, entry] of this.entries) {
      if (this.chars <= this.maxChars) break
      this.remove(oldest, entry)
    }
  }

  get size(): number {
    return this.entries.size
  }

  private remove(id: ConversationId, entry: Entry): void {
    this.entries.delete(id)
    this.chars -= entry.size
  }
}
