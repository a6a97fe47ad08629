import { Config, Effect, Exit, type Scope } from "effect"

/** How appends are grouped: at most `batchSize` per statement, `workers` shards, `lingerMs` of waiting under load. */
export const GroupCommitConfig = Config.all({
  batchSize: Config.integer("DB_APPEND_BATCH_MAX").pipe(Config.withDefault(256)),
  workers: Config.integer("DB_APPEND_WORKERS").pipe(Config.withDefault(2)),
  lingerMs: Config.number("DB_APPEND_LINGER_MS").pipe(Config.withDefault(1))
})
export type GroupCommitConfig = Config.Config.Success<typeof GroupCommitConfig>

export interface GroupCommitOptions<In, Out, E> extends GroupCommitConfig {
  /** Items of one order key (a conversation) always go to the same shard, and are flushed in arrival order. */
  readonly orderKey: (item: In) => string
  /** Items of one key (a retried send) in one batch are flushed once; the later ones get `repeat` of the answer. */
  readonly dedupeKey: (item: In) => string | undefined
  readonly repeat: (answer: Out) => Out
  /** Writes a batch (one statement): one answer per item, in order. A failure fails every caller of the batch. */
  readonly flush: (batch: ReadonlyArray<In>) => Effect.Effect<ReadonlyArray<Out>, E>
}

interface Pending<In, Out, E> {
  readonly item: In
  readonly done: (answer: Exit.Exit<Out, E>) => void
}

/**
 * One queue and one worker per shard, an order key always in the same shard: batches of different shards
 * commit side by side without waiting for each other's locks, and one key's items are written in the order
 * they arrived. A queue is a plain array and each caller waits on its own callback: this is every send's path,
 * and a queue and a deferred per item cost more than the rest of the wait.
 */
interface Shard<In, Out, E> {
  waiting: Array<Pending<In, Out, E>>
  wake: (() => void) | undefined
}

/** What callers of a group commit call: with a fiber of their own, or with a callback (none per call). */
export interface GroupCommit<In, Out, E> {
  /** Waits for the item's flush and answers with its answer. */
  readonly enqueue: (item: In) => Effect.Effect<Out, E>
  /**
   * The same without a fiber: `done` is called once with the answer, from the flush's worker (it must be
   * quick and not throw; what it throws is lost to it and does not stop the worker).
   */
  readonly submit: (item: In, done: (answer: Exit.Exit<Out, E>) => void) => void
}

/**
 * Group commit: concurrent callers share one flush. The workers live as long as the scope.
 */
export const make = <In, Out, E>(options: GroupCommitOptions<In, Out, E>): Effect.Effect<
  GroupCommit<In, Out, E>,
  never,
  Scope.Scope
> =>
  Effect.gen(function*() {
    const { batchSize, lingerMs } = options
    const shards: ReadonlyArray<Shard<In, Out, E>> = Array.from({ length: Math.max(1, options.workers) }, () => ({
      waiting: [],
      wake: undefined
    }))
    const shardOf = (item: In) => {
      // Keys are uuids: their last 8 hex digits spread them.
      const n = Number.parseInt(options.orderKey(item).slice(-8), 16)
      return shards[Number.isNaN(n) ? 0 : n % shards.length]!
    }

    /** Up to `max` of what waits in the shard, oldest first. */
    const takeUpTo = (shard: Shard<In, Out, E>, max: number) => shard.waiting.splice(0, max)
    /** What waits in the shard (at least one), once it has something. */
    const arrival = (shard: Shard<In, Out, E>) =>
      Effect.suspend(() =>
        shard.waiting.length > 0
          ? Effect.succeed(takeUpTo(shard, batchSize))
          : Effect.async<ReadonlyArray<Pending<In, Out, E>>>((resume) => {
            shard.wake = () => resume(Effect.sync(() => takeUpTo(shard, batchSize)))
            return Effect.sync(() => {
              shard.wake = undefined
            })
          })
      )

    /**
     * Takes what has arrived (at least one), flushes it at once, answers each caller. Under load (the last
     * batch had company) it lingers `lingerMs` for more before it goes: every statement costs both sides a
     * round trip and a commit, so fewer, larger ones leave more CPU for the sends.
     */
    const worker = (shard: Shard<In, Out, E>) => {
      let last = 0
      return Effect.gen(function*() {
        const arrived = yield* arrival(shard)
        const taken = last < 2 || lingerMs <= 0 || arrived.length >= batchSize
          ? arrived
          : [...arrived, ...(yield* Effect.zipRight(
            Effect.sleep(lingerMs),
            Effect.sync(() => takeUpTo(shard, batchSize - arrived.length))
          ))]
        last = taken.length
        // The same key twice in one batch: the first is written, the second gets the first's answer.
        const firstByKey = new Map<string, number>()
        const items: Array<In> = []
        // Each caller's answer: the index of its item in the flush, and whether it repeats one.
        const slots = taken.map((pending) => {
          const key = options.dedupeKey(pending.item)
          const first = key === undefined ? undefined : firstByKey.get(key)
          if (first !== undefined) return { index: first, repeat: true }
          if (key !== undefined) firstByKey.set(key, items.length)
          items.push(pending.item)
          return { index: items.length - 1, repeat: false }
        })
        const results = yield* Effect.exit(options.flush(items))
        const failed = Exit.isFailure(results) ? Exit.failCause(results.cause) : undefined
        taken.forEach((pending, i) => {
          try {
            if (failed !== undefined || Exit.isFailure(results)) return pending.done(failed!)
            const { index, repeat } = slots[i]!
            const answer = results.value[index]!
            pending.done(Exit.succeed(repeat ? options.repeat(answer) : answer))
          } catch {
            // A caller's callback threw: its own bug, not the batch's; the others still get their answers.
          }
        })
      })
    }
    yield* Effect.forEach(shards, (shard) => Effect.forkScoped(Effect.forever(worker(shard))))

    const submit = (item: In, done: (answer: Exit.Exit<Out, E>) => void): void => {
      const shard = shardOf(item)
      shard.waiting.push({ item, done })
      const wake = shard.wake
      shard.wake = undefined
      wake?.()
    }
    return {
      enqueue: (item: In) => Effect.async<Out, E>((resume) => submit(item, resume)),
      submit
    }
  })
