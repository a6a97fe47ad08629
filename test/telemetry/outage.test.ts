import { expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { pair, send } from "../support/Chat.js"
import { freePort, startInstance } from "../support/Instances.js"
import { ownPostgres, ownRedis } from "../support/Services.js"
import { TestServer } from "../support/TestApp.js"
import { pollUntil } from "../support/Waiting.js"

/** A sample's value in the instance's scrape (the sum over label sets matching `labels`; 0 when absent). */
const sample = (port: number, name: string, labels: Record<string, string> = {}) =>
  Effect.promise(async () => {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
    let sum = 0
    for (const line of text.split("\n")) {
      if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue
      if (Object.entries(labels).every(([key, value]) => line.includes(`${key}="${value}"`))) sum += Number(line.split(" ").at(-1))
    }
    return sum
  })

it.scopedLive(
  "what the alerts read: Redis away → chat_redis_connected 0, commands failing, not ready; back → 1; Postgres away → statements failing, not ready",
  () =>
    Effect.gen(function*() {
      const pg = yield* ownPostgres
      const redis = yield* ownRedis
      const metricsPort = yield* freePort
      const instance = yield* startInstance({ DATABASE_URL: pg.url, REDIS_URL: redis.url, METRICS_PORT: String(metricsPort) })
      const server = instance.server
      const { conversationId, user } = yield* Effect.provideService(pair, TestServer, server)
      const sendNow = (content: string) => Effect.provideService(send(user.token, conversationId, content), TestServer, server)
      const value = (name: string, labels?: Record<string, string>) => sample(metricsPort, name, labels)
      const until = (name: string, labels: Record<string, string>, wanted: number, what: string) =>
        pollUntil(Effect.map(value(name, labels), (v) => (v === wanted ? v : undefined)), 10_000, what)

      expect(yield* value("chat_ready")).toBe(1)
      expect(yield* value("chat_redis_connected", { connection: "commands" })).toBe(1)
      expect(yield* value("chat_redis_connected", { connection: "subscriber" })).toBe(1)
      const failedBefore = yield* value("chat_redis_command_failures_total")

      yield* redis.kill
      yield* until("chat_redis_connected", { connection: "commands" }, 0, "the commands connection counted down")
      yield* until("chat_redis_connected", { connection: "subscriber" }, 0, "the subscriber counted down")
      // A send still works (this instance's sockets, its memory's limits); its Redis commands fail.
      expect((yield* sendNow("while Redis is away")).status).toBe(201)
      expect(yield* value("chat_redis_command_failures_total")).toBeGreaterThan(failedBefore)
      expect(yield* value("chat_ready")).toBe(0)

      yield* redis.start
      yield* until("chat_redis_connected", { connection: "commands" }, 1, "the commands connection back")
      yield* until("chat_redis_connected", { connection: "subscriber" }, 1, "the subscriber back")
      yield* until("chat_ready", {}, 1, "ready again")

      const statementsBefore = yield* value("chat_db_query_failures_total")
      yield* pg.stop
      expect((yield* sendNow("while Postgres is away")).status).toBe(503)
      expect(yield* value("chat_db_query_failures_total")).toBeGreaterThan(statementsBefore)
      // Readiness is asked again once its last answer is a second old.
      yield* until("chat_ready", {}, 0, "not ready while Postgres is away")
      yield* pg.start
      yield* until("chat_ready", {}, 1, "ready once Postgres is back")
    }),
  60_000
)
