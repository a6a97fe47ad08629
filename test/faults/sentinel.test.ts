import { it } from "@effect/vitest"
import { type ChildProcess, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { Effect, Logger, LogLevel, type Scope } from "effect"
import { expect } from "vitest"
import { exitOf, freePort, startInstance } from "../support/Instances.js"
import { ownPostgres, redisAnswer } from "../support/Services.js"
import { tempDir } from "../support/TempDir.js"
import { Client, clients, expectSound, pairs, settle, tally } from "./Traffic.js"

/** A redis-server whose files (a replica's RDB of its first sync, a sentinel's rewritten config) stay in `dir`. */
const redisServer = (dir: string, args: ReadonlyArray<string>) =>
  Effect.acquireRelease(
    Effect.sync(() => spawn("redis-server", [...args], { stdio: "ignore", cwd: dir })),
    (child) =>
      child.exitCode !== null || child.signalCode !== null
        ? Effect.void
        : Effect.zipRight(Effect.sync(() => child.kill("SIGKILL")), Effect.asVoid(exitOf(child)))
  )

/** A primary, a replica and three sentinels watching them as `mymaster`, on free ports of their own. */
const ownSentinels: Effect.Effect<{ readonly sentinels: string; readonly primary: ChildProcess; readonly sentinelPort: number }, Error, Scope.Scope> =
  Effect.gen(function*() {
    const [primaryPort, replicaPort] = [yield* freePort, yield* freePort]
    const dir = yield* tempDir("chat-sentinels-")
    const common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir]
    const primary = yield* redisServer(dir, ["--port", String(primaryPort), ...common])
    yield* redisAnswer(primaryPort, ["PING"], (a) => a === "PONG", "the primary")
    yield* redisServer(dir, ["--port", String(replicaPort), "--replicaof", "127.0.0.1", String(primaryPort), ...common])
    yield* redisAnswer(primaryPort, ["INFO", "replication"], (a) => String(a).includes("connected_slaves:1"), "the replica")
    const ports: Array<number> = []
    for (let i = 0; i < 3; i++) {
      const port = yield* freePort
      ports.push(port)
      const conf = Path.join(dir, `sentinel-${i}.conf`)
      Fs.writeFileSync(conf, [
        `port ${port}`,
        "bind 127.0.0.1",
        `sentinel monitor mymaster 127.0.0.1 ${primaryPort} 2`,
        "sentinel down-after-milliseconds mymaster 1000",
        "sentinel failover-timeout mymaster 5000",
        "sentinel parallel-syncs mymaster 1",
        ""
      ].join("\n"))
      yield* redisServer(dir, [conf, "--sentinel"])
    }
    // Every sentinel knows the replica and the two others before anything fails.
    for (const port of ports) {
      yield* redisAnswer(port, ["SENTINEL", "REPLICAS", "mymaster"], (a) => Array.isArray(a) && a.length === 1, "the sentinels see the replica")
      yield* redisAnswer(port, ["SENTINEL", "SENTINELS", "mymaster"], (a) => Array.isArray(a) && a.length === 2, "the sentinels see each other")
    }
    return { sentinels: ports.map((port) => `127.0.0.1:${port}`).join(","), primary, sentinelPort: ports[0]! }
  })

it.live("Sentinel: the primary killed under two instances' traffic → the replica promoted, deliveries resume by themselves; nothing acked lost, no duplicates, no gaps", () =>
  Effect.gen(function*() {
    const pg = yield* ownPostgres
    const { primary, sentinelPort, sentinels } = yield* ownSentinels
    const env = { DATABASE_URL: pg.url, REDIS_SENTINELS: sentinels, REDIS_SENTINEL_NAME: "mymaster" }
    const [a, b] = yield* Effect.all([startInstance(env), startInstance(env)], { concurrency: 2 })
    const conversations = yield* pairs(a, 8)
    const counts = tally()
    // Receivers on B hear what senders on A send only through Redis.
    const receivers = yield* clients(() => conversations.map((p, i) => new Client(p, p.trainer, () => [b], counts, `r${i}`)))
    const senders = yield* clients(() => conversations.map((p, i) => new Client(p, p.user, () => [a], counts, `s${i}`)))
    for (const s of senders) s.run(50)
    yield* Effect.sleep("2 seconds")
    const delivered = () => receivers.reduce((n, r) => n + r.seen.size, 0)
    const deliveredBefore = delivered()

    primary.kill("SIGKILL")
    const killedAt = Date.now()
    // The sentinels promote the replica.
    yield* redisAnswer(sentinelPort, ["SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster"], (addr) =>
      Array.isArray(addr) && addr[1] !== String(primary.spawnargs[2]), "a new primary")
    // Deliveries across the instances resume by themselves within 10 s of the kill.
    const promoted = delivered()
    yield* Effect.repeat(Effect.sleep("200 millis"), { until: () => delivered() > promoted + 50 || Date.now() - killedAt > 15_000 })
    expect(delivered()).toBeGreaterThan(promoted + 50)
    expect(Date.now() - killedAt).toBeLessThan(10_000)
    expect(delivered()).toBeGreaterThan(deliveredBefore)
    yield* Effect.sleep("2 seconds")
    expectSound(yield* settle("sentinel-failover", {
      databaseUrl: pg.url,
      senders,
      receivers,
      counts,
      faultEndedAt: killedAt
    }))
  }).pipe(Effect.scoped, Effect.provide(Logger.minimumLogLevel(LogLevel.Warning))), 180_000)
