import { describe, expect, it } from "@effect/vitest"
import { FailureLog } from "../../src/ws/FailureLog.js"

describe("FailureLog", () => {
  it("logs a kind once per period, then a summary with the count of the others", async () => {
    const summaries: Array<[string, number]> = []
    const log = new FailureLog(50, (kind, suppressed) => void summaries.push([kind, suppressed]))
    const taken = Array.from({ length: 100 }, (_, i) => log.take(i % 2 === 0 ? "a" : "b"))
    expect(taken.filter(Boolean)).toHaveLength(2)
    await new Promise((resolve) => setTimeout(resolve, 120))
    expect(summaries.sort()).toEqual([["a", 49], ["b", 49]])
    // A new period logs again.
    expect(log.take("a")).toBe(true)
    expect(log.take("a")).toBe(false)
  })
})
