import { it } from "@effect/vitest"
import { Effect, Logger, LogLevel } from "effect"
import { startInstance } from "../support/Instances.js"
import { ownPostgres } from "../support/Services.js"
import { Client, clients, expectSound, outageMs, pairs, settle, tally } from "./Traffic.js"

const quiet = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  effect.pipe(Effect.scoped, Effect.provide(Logger.minimumLogLevel(LogLevel.Warning)))

/** One instance on the suite's own Postgres, 8 conversations sending 20 messages a second each, live receivers. */
const traffic = Effect.gen(function*() {
  const pg = yield* ownPostgres
  const instance = yield* startInstance({ DATABASE_URL: pg.url })
  const conversations = yield* pairs(instance, 8)
  const counts = tally()
  const receivers = yield* clients(() => conversations.map((p, i) => new Client(p, p.trainer, () => [instance], counts, `r${i}`)))
  const senders = yield* clients(() => conversations.map((p, i) => new Client(p, p.user, () => [instance], counts, `s${i}`)))
  for (const s of senders) s.run(50)
  yield* Effect.sleep("2 seconds")
  return { pg, counts, receivers, senders }
})

it.live("Postgres restart (immediate shutdown, then start): nothing acked lost, no duplicates, no gaps; recovery time", () =>
  quiet(Effect.gen(function*() {
    const { counts, pg, receivers, senders } = yield* traffic
    yield* pg.stop
    yield* Effect.sleep(outageMs)
    yield* pg.start
    const faultEndedAt = Date.now()
    yield* Effect.sleep("3 seconds")
    expectSound(yield* settle("postgres-restart", { databaseUrl: pg.url, senders, receivers, counts, faultEndedAt }))
  })), 180_000)

it.live("Postgres stall (SIGSTOP of every Postgres process, then SIGCONT): nothing acked lost, no duplicates, no gaps; recovery time", () =>
  quiet(Effect.gen(function*() {
    const { counts, pg, receivers, senders } = yield* traffic
    yield* pg.stall
    yield* Effect.sleep(outageMs)
    yield* pg.resume
    const faultEndedAt = Date.now()
    yield* Effect.sleep("3 seconds")
    expectSound(yield* settle("postgres-stall", { databaseUrl: pg.url, senders, receivers, counts, faultEndedAt }))
  })), 180_000)
