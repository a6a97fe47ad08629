import { describe, expect, it } from "@effect/vitest"
import type { ConversationId } from "../../src/domain/chat/Model.js"
import { NewestPages } from "../../src/infra/wire/NewestPages.js"

const id = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, "0")}` as ConversationId
const page = (seqs: Array<number>, hasMore: boolean) => ({ messages: seqs.map((s) => `{"seq":${s}}`), hasMore })

describe("NewestPages", () => {
  it("serves a page only under the version it was stored with, and within its time to live", () => {
    const pages = new NewestPages(1_000_000, 1000)
    pages.set(id(1), "v1", 50, page([1, 2, 3], false), 0)
    expect(pages.get(id(1), "v1", 50, 999)).toEqual(page([1, 2, 3], false))
    expect(pages.get(id(1), "v2", 50, 999)).toBeUndefined()
    // A mismatch drops the entry: the old version does not come back.
    expect(pages.get(id(1), "v1", 50, 999)).toBeUndefined()
    pages.set(id(1), "v1", 50, page([1, 2, 3], false), 0)
    expect(pages.get(id(1), "v1", 50, 1001)).toBeUndefined()
    expect(pages.size).toBe(0)
  })

  it("cuts shorter pages from the kept one and knows a longer one only when it holds the whole log", () => {
    const pages = new NewestPages(1_000_000, 60_000)
    pages.set(id(1), "v", 3, page([8, 9, 10], true), 0)
    expect(pages.get(id(1), "v", 2, 0)).toEqual(page([9, 10], true))
    expect(pages.get(id(1), "v", 3, 0)).toEqual(page([8, 9, 10], true))
    expect(pages.get(id(1), "v", 4, 0)).toBeUndefined()
    pages.set(id(2), "v", 3, page([1, 2], false), 0)
    expect(pages.get(id(2), "v", 100, 0)).toEqual(page([1, 2], false))
    expect(pages.get(id(2), "v", 1, 0)).toEqual(page([2], true))
  })

  it("lets the least recently used pages go past its size, and keeps no page bigger than a quarter of it", () => {
    const one = page([1], false)
    const size = one.messages[0]!.length
    const pages = new NewestPages(size * 4, 60_000)
    for (let i = 1; i <= 4; i++) pages.set(id(i), "v", 50, one, 0)
    expect(pages.get(id(1), "v", 50, 0)).toBeDefined()
    pages.set(id(5), "v", 50, one, 0)
    expect(pages.size).toBe(4)
    expect(pages.get(id(2), "v", 50, 0)).toBeUndefined()
    expect(pages.get(id(1), "v", 50, 0)).toBeDefined()
    pages.set(id(6), "v", 50, page([1, 2], false), 0)
    expect(pages.get(id(6), "v", 50, 0)).toBeUndefined()
    // Storing again replaces, without counting the old page twice.
    for (let i = 0; i < 10; i++) pages.set(id(1), "v", 50, one, 0)
    expect(pages.size).toBe(4)
  })
})
