import { describe, expect, it } from "@effect/vitest"
import { InOrder } from "../../src/ws/InOrder.js"

const m = (seq: number, conversationId = "a") => ({ conversationId, seq })

describe("InOrder", () => {
  it("delivers in seq order per conversation, holding what arrives ahead of a gap", () => {
    const out: Array<string> = []
    const order = new InOrder<{ conversationId: string; seq: number }>((x) => out.push(`${x.conversationId}${x.seq}`), 1000)
    order.push(m(1))
    order.push(m(3))
    order.push(m(1, "b"))
    order.push(m(4))
    expect(out).toEqual(["a1", "b1"])
    order.push(m(2))
    expect(out).toEqual(["a1", "b1", "a2", "a3", "a4"])
  })

  it("delivers each seq once: a message that comes again (a retried send announced again) is dropped", () => {
    const out: Array<number> = []
    const order = new InOrder<{ conversationId: string; seq: number }>((x) => out.push(x.seq), 1000)
    order.push(m(1))
    order.push(m(2))
    order.push(m(2))
    order.push(m(1))
    expect(out).toEqual([1, 2])
    order.push(m(4))
    order.push(m(3))
    order.push(m(3))
    order.push(m(4))
    expect(out).toEqual([1, 2, 3, 4])
  })

  it("a conversation first heard of after its start: what comes late from below still goes out, once", () => {
    const out: Array<number> = []
    const order = new InOrder<{ conversationId: string; seq: number }>((x) => out.push(x.seq), 1000)
    order.push(m(2))
    order.push(m(1))
    order.push(m(1))
    order.push(m(3))
    expect(out).toEqual([2, 1, 3])
  })

  it("on timeout delivers what it held, and never drops a late message", async () => {
    const out: Array<number> = []
    const order = new InOrder<{ conversationId: string; seq: number }>((x) => out.push(x.seq), 20)
    order.push(m(5))
    order.push(m(7))
    order.push(m(8))
    expect(out).toEqual([5])
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(out).toEqual([5, 7, 8])
    order.push(m(6))
    order.push(m(9))
    expect(out).toEqual([5, 7, 8, 6, 9])
    // Once each: the skipped one again, or a delivered one again, goes nowhere.
    order.push(m(6))
    order.push(m(7))
    expect(out).toEqual([5, 7, 8, 6, 9])
  })

  it("tells of a gap that did not fill in time (once per conversation), never of one that filled", async () => {
    const gaps: Array<string> = []
    const order = new InOrder<{ conversationId: string; seq: number }>(() => {}, 20, 100, (id) => gaps.push(id))
    order.push(m(1))
    order.push(m(3))
    order.push(m(4))
    order.push(m(1, "b"))
    order.push(m(3, "b"))
    order.push(m(2, "b"))
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(gaps).toEqual(["a"])
  })
})
