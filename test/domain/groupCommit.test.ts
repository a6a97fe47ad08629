import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit } from "effect"
import * as GroupCommit from "../../src/domain/GroupCommit.js"

// Unit tests of the group commit alone, over a fake flush that records its batches.

interface Item {
  readonly key: string
  readonly n: number
  readonly id?: string
}

const conversation = (k: number) => `00000000-0000-4000-8000-${String(k).padStart(12, "0")}`

const setup = (options: {
  readonly batchSize?: number
  readonly workers?: number
  readonly lingerMs?: number
  /** Holds every flush until it is done (the first flush's callers wait while others arrive). */
  readonly gate?: Deferred.Deferred<void>
  readonly fails?: (batch: ReadonlyArray<Item>) => boolean
}) =>
  Effect.gen(function*() {
    const batches: Array<ReadonlyArray<Item>> = []
    const group = yield* GroupCommit.make<Item, string, string>({
      batchSize: options.batchSize ?? 256,
      workers: options.workers ?? 1,
      lingerMs: options.lingerMs ?? 0,
      orderKey: (item) => item.key,
      dedupeKey: (item) => item.id,
      repeat: (answer) => `repeat of ${answer}`,
      flush: (batch) =>
        Effect.gen(function*() {
          batches.push(batch)
          if (options.gate !== undefined) yield* Deferred.await(options.gate)
          if (options.fails?.(batch) === true) return yield* Effect.fail("batch failed")
          return batch.map((item) => `${item.key.slice(-2)}#${item.n}`)
        })
    })
    return { append: group.enqueue, submit: group.submit, batches }
  })

describe("GroupCommit", () => {
  it.scopedLive("callers that arrive while a flush runs share the next one, in arrival order, each with its own answer", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const { append, batches } = yield* setup({ gate })
      const first = yield* Effect.fork(append({ key: conversation(1), n: 0 }))
      yield* Effect.yieldNow()
      const rest = yield* Effect.fork(Effect.all(
        Array.from({ length: 5 }, (_, n) => append({ key: conversation(1), n: n + 1 })),
        { concurrency: "unbounded" }
      ))
      yield* Effect.sleep("5 millis")
      yield* Deferred.succeed(gate, undefined)
      expect(yield* first.await).toEqual(Exit.succeed("01#0"))
      expect(yield* rest.await).toEqual(Exit.succeed(["01#1", "01#2", "01#3", "01#4", "01#5"]))
      expect(batches.map((batch) => batch.map((item) => item.n))).toEqual([[0], [1, 2, 3, 4, 5]])
    }))

  it.scopedLive("a batch holds at most batchSize items; what is over waits for the next", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const { append, batches } = yield* setup({ gate, batchSize: 3 })
      const all = yield* Effect.fork(Effect.all(
        Array.from({ length: 8 }, (_, n) => append({ key: conversation(1), n })),
        { concurrency: "unbounded" }
      ))
      yield* Effect.sleep("5 millis")
      yield* Deferred.succeed(gate, undefined)
      expect((yield* all.await)._tag).toBe("Success")
      expect(batches.map((batch) => batch.map((item) => item.n))).toEqual([[0, 1, 2], [3, 4, 5], [6, 7]])
    }))

  it.scopedLive("a failed batch fails only its own callers; the next batch is written", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const { append, batches } = yield* setup({ gate, batchSize: 2, fails: (batch) => batch.some((item) => item.n === 1) })
      const answers = yield* Effect.fork(Effect.all(
        Array.from({ length: 4 }, (_, n) => Effect.either(append({ key: conversation(1), n }))),
        { concurrency: "unbounded" }
      ))
      yield* Effect.sleep("5 millis")
      yield* Deferred.succeed(gate, undefined)
      const results = yield* answers.await.pipe(Effect.flatten)
      expect(results.map((r) => r._tag === "Right" ? r.right : `failed: ${r.left}`)).toEqual([
        "failed: batch failed",
        "failed: batch failed",
        "01#2",
        "01#3"
      ])
      expect(batches).toHaveLength(2)
    }))

  it.scopedLive("the same key twice in one batch is written once; the second caller gets its repeat", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const { append, batches } = yield* setup({ gate })
      const blocker = yield* Effect.fork(append({ key: conversation(1), n: 0 }))
      yield* Effect.sleep("2 millis")
      const pair = yield* Effect.fork(Effect.all([
        append({ key: conversation(1), n: 1, id: "retry" }),
        append({ key: conversation(1), n: 2, id: "retry" }),
        append({ key: conversation(1), n: 3, id: "other" })
      ], { concurrency: "unbounded" }))
      yield* Effect.sleep("5 millis")
      yield* Deferred.succeed(gate, undefined)
      yield* blocker.await
      expect(yield* pair.await).toEqual(Exit.succeed(["01#1", "repeat of 01#1", "01#3"]))
      expect(batches[1]!.map((item) => item.n)).toEqual([1, 3])
    }))

  it.scopedLive("each order key keeps one shard: its items are written in order, other shards side by side", () =>
    Effect.gen(function*() {
      const { append, batches } = yield* setup({ workers: 4, lingerMs: 1 })
      const keys = [1, 2, 3, 4, 5, 6, 7, 8].map(conversation)
      yield* Effect.all(
        Array.from({ length: 400 }, (_, n) => append({ key: keys[n % keys.length]!, n })),
        { concurrency: "unbounded" }
      )
      for (const key of keys) {
        const written = batches.flat().filter((item) => item.key === key).map((item) => item.n)
        expect(written).toEqual([...written].sort((a, b) => a - b))
        expect(written).toHaveLength(50)
      }
      // Each batch comes from one shard: the keys in it share their shard.
      for (const batch of batches) {
        const shards = new Set(batch.map((item) => Number.parseInt(item.key.slice(-8), 16) % 4))
        expect(shards.size).toBe(1)
      }
      expect(batches.length).toBeLessThan(400)
    }))

  it.scopedLive("submit: callers without a fiber get their answers; one whose callback throws stops no one", () =>
    Effect.gen(function*() {
      const { batches, submit } = yield* setup({ lingerMs: 1 })
      const answers: Array<string> = []
      const all = yield* Deferred.make<void>()
      for (let n = 0; n < 10; n++) {
        submit({ key: conversation(1), n }, (exit) => {
          if (n === 3) throw new Error("a caller's bug")
          answers.push(Exit.isSuccess(exit) ? exit.value : "failed")
          if (answers.length === 9) Deferred.unsafeDone(all, Exit.void)
        })
      }
      yield* Deferred.await(all)
      expect(answers).toEqual([0, 1, 2, 4, 5, 6, 7, 8, 9].map((n) => `01#${n}`))
      // The worker goes on after the throw.
      const after = yield* Deferred.make<string, string>()
      submit({ key: conversation(1), n: 10 }, (exit) => Deferred.unsafeDone(after, exit))
      expect(yield* Deferred.await(after)).toBe("01#10")
      expect(batches.flat().map((item) => item.n)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    }))
})
