import { Duration, Effect, Exit } from "effect"

/**
 * Runs `sweep` every `poll` while it works, and again at once while it answers that more is waiting. While it
 * fails (the database is away) it backs off up to 10 s and says so once, not at every poll: an outage is one
 * warning ("<name> sweep failed…"), and its end one line more. `idle` runs after each round that worked.
 */
export const sweepForever = <E, R, R2 = never>(options: {
  readonly name: string
  readonly sweep: Effect.Effect<boolean, E, R>
  readonly poll: Duration.DurationInput
  readonly idle?: Effect.Effect<void, never, R2>
}): Effect.Effect<never, never, R | R2> => {
  const pollMs = Duration.toMillis(options.poll)
  let failures = 0
  const round = Effect.gen(function*() {
    const exit = yield* Effect.exit(Effect.repeat(options.sweep, { while: (more) => more }))
    if (Exit.isSuccess(exit)) {
      if (failures > 0) yield* Effect.logInfo(`${options.name} sweeps work again`).pipe(Effect.annotateLogs({ failures }))
      failures = 0
      if (options.idle !== undefined) yield* options.idle
      return yield* Effect.sleep(options.poll)
    }
    failures++
    if (failures === 1) {
      yield* Effect.logWarning(`${options.name} sweep failed; retrying with backoff until it works`, exit.cause)
    }
    yield* Effect.sleep(Duration.millis(Math.min(10_000, pollMs * 2 ** Math.min(failures, 16))))
  })
  return Effect.forever(round)
}
