import { it } from "@effect/vitest"
import { Effect, Logger, LogLevel } from "effect"
import { type Instance, startInstance } from "../support/Instances.js"
import { ownPostgres, ownRedis } from "../support/Services.js"
import { Client, clients, expectSound, outageMs, pairs, settle, tally } from "./Traffic.js"

const quiet = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  effect.pipe(Effect.scoped, Effect.provide(Logger.minimumLogLevel(LogLevel.Warning)))

/**
 * Two instances on the suite's own Postgres and Redis; 8 conversations whose senders are on A (and move to B
 * when A goes) and whose receivers are on B, sending 20 messages a second each.
 */
const twoInstances = Effect.gen(function*() {
  const pg = yield* ownPostgres
  const redis = yield* ownRedis
  const env = { DATABASE_URL: pg.url, REDIS_URL: redis.url }
  const [a, b] = yield* Effect.all([startInstance(env), startInstance(env)], { concurrency: 2 })
  const conversations = yield* pairs(a, 8)
  const counts = tally()
  const targets = (): ReadonlyArray<Instance> => [a, b]
  const receivers = yield* clients(() => conversations.map((p, i) => new Client(p, p.trainer, () => [b], counts, `r${i}`)))
  const senders = yield* clients(() => conversations.map((p, i) => new Client(p, p.user, targets, counts, `s${i}`)))
  for (const s of senders) s.run(50)
  yield* Effect.sleep("2 seconds")
  return { a, b, pg, redis, counts, receivers, senders }
})

it.live("Redis restart with two instances: receivers on the other instance are told to resync and catch up; nothing acked lost, no duplicates, no gaps", () =>
  quiet(Effect.gen(function*() {
    const { counts, pg, receivers, redis, senders } = yield* twoInstances
    yield* redis.kill
    yield* Effect.sleep(outageMs)
    yield* redis.start
    const faultEndedAt = Date.now()
    yield* Effect.sleep("4 seconds")
    expectSound(yield* settle("redis-restart", {
      databaseUrl: pg.url,
      senders,
      receivers,
      counts,
      faultEndedAt,
      extra: () => `resyncMs=${counts.firstResyncAt === undefined ? "none" : counts.firstResyncAt - faultEndedAt}`
    }))
  })), 180_000)

for (const kill of ["SIGKILL", "SIGTERM"] as const) {
  it.live(`${kill} of an instance with sends in flight: its clients move to the other and resend; nothing acked lost, no duplicates, no gaps`, () =>
    quiet(Effect.gen(function*() {
      const { a, counts, pg, receivers, senders } = yield* twoInstances
      a.child.kill(kill)
      const faultEndedAt = Date.now()
      yield* Effect.sleep("4 seconds")
      expectSound(yield* settle(kill === "SIGKILL" ? "instance-sigkill" : "instance-sigterm", {
        databaseUrl: pg.url,
        senders,
        receivers,
        counts,
        faultEndedAt
      }))
    })), 180_000)
}
