import { expect, it } from "@effect/vitest"
import { Effect, Logger, LogLevel, Option } from "effect"
import { exitOf, startInstance } from "../support/Instances.js"
import { ownPostgres, ownRedis } from "../support/Services.js"
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

/**
 * SIGTERM while a service the requests wait on is stalled (SIGSTOP): the grace runs out and the process exits
 * anyway. Before, the wait for work in flight ran in the finalizer's uninterruptible region, where its
 * timeout could not stop it: the process never exited.
 */
const stalledShutdown = (stalled: "postgres" | "redis") =>
  quiet(Effect.gen(function*() {
    const pg = yield* ownPostgres
    const redis = yield* ownRedis
    const instance = yield* startInstance({ DATABASE_URL: pg.url, REDIS_URL: redis.url, SHUTDOWN_GRACE_MS: "2000" })
    const [conversation] = yield* pairs(instance, 1)
    const auth = { authorization: `Bearer ${conversation!.user.token}`, "content-type": "application/json" }
    yield* stalled === "postgres" ? pg.stall : redis.stall
    // Requests that wait on the stalled service (their answers do not matter here).
    for (const n of [1, 2]) {
      void fetch(`${instance.url}/chat/messages`, {
        method: "POST",
        headers: auth,
        body: JSON.stringify({ conversationId: conversation!.conversationId, content: `stalled ${n}`, clientMessageId: `stalled-${n}` })
      }).catch(() => undefined)
    }
    void fetch(`${instance.url}/chat/conversations/${conversation!.conversationId}/messages?limit=50`, { headers: auth })
      .catch(() => undefined)
    yield* Effect.sleep("500 millis")
    const asked = Date.now()
    instance.child.kill("SIGTERM")
    const code = yield* exitOf(instance.child).pipe(Effect.timeout("30 seconds"), Effect.option)
    const tookMs = Date.now() - asked
    yield* stalled === "postgres" ? pg.resume : redis.resume
    expect(Option.isSome(code), "the process was still running 30 s after SIGTERM").toBe(true)
    // 2 s of grace, then the closes of what is left, each bounded.
    expect(tookMs).toBeLessThan(15_000)
  }))

it.live("SIGTERM while Postgres is stalled, with sends and a page read waiting on it: the process exits after its grace", () =>
  stalledShutdown("postgres"), 120_000)

it.live("SIGTERM while Redis is stalled, with sends waiting on it: the process exits after its grace", () =>
  stalledShutdown("redis"), 120_000)
