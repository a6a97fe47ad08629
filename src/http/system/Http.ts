import * as Reactivity from "@effect/experimental/Reactivity"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { Duration, Effect, Option, Runtime, Scope } from "effect"
import { Metrics } from "../../domain/ports/Metrics.js"
import { ServiceUnavailable } from "../../domain/Errors.js"
import { PushSenders } from "../../domain/ports/PushRepo.js"
import { PostgresConfig } from "../../infra/sql/Client.js"
import { MigrationsDone } from "../../infra/sql/Migrations.js"
import { RedisConnection } from "../../infra/redis/Redis.js"
import { Pglite } from "../../infra/sql/Pglite.js"
import { Api } from "../Api.js"

/** A readiness answer this recent is given again without asking the database (probes come often). */
const freshFor = 1000

export const SystemLive = HttpApiBuilder.group(Api, "system", (handlers) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    // Built only after migrations ran: a listening server has an up-to-date schema.
    yield* MigrationsDone
    const database = Option.isSome(yield* Effect.serviceOption(Pglite)) ? "pglite" as const : "postgres" as const
    const redis = yield* Effect.serviceOption(RedisConnection)
    const push = [...(yield* PushSenders).platforms].sort()
    const shared = () =>
      Option.match(redis, {
        onNone: () => "memory" as const,
        onSome: ({ client }) => client.status === "ready" ? "redis-up" as const : "redis-down" as const
      })

    // On Postgres, readiness asks over a connection of its own: a busy pool (every connection taken by slow
    // requests) is a working instance, and must not be pulled out of the balancer for waiting its turn.
    // The routes are built in a scope that ends once the HTTP app exists, so this pool lives in one of its own,
    // never closed: its one connection closes by itself when probes stop (idle timeout), and dies with the process.
    const postgres = yield* PostgresConfig
    const probe = database === "postgres" && Option.isSome(postgres)
      ? yield* PgClient.make({
        ...postgres.value,
        maxConnections: 1,
        applicationName: "trainer-chat readiness",
        connectTimeout: Duration.seconds(2),
        idleTimeout: Duration.seconds(15)
      }).pipe(Effect.provide(Reactivity.layer), Scope.extend(yield* Scope.make()))
      : sql
    let answeredAt = 0

    const ready = Effect.suspend(() => {
      const answer = () => {
        const via = shared()
        return { status: via === "redis-down" ? "degraded" as const : "ready" as const, database, shared: via, push }
      }
      if (Date.now() - answeredAt < freshFor) return Effect.succeed(answer())
      return probe`SELECT 1`.pipe(
        Effect.timeoutFail({
          duration: Duration.seconds(2),
          onTimeout: () => new ServiceUnavailable({ message: "The database did not answer in time" })
        }),
        Effect.catchTag("SqlError", () => new ServiceUnavailable({ message: "The database is unreachable" })),
        Effect.map(() => {
          answeredAt = Date.now()
          return answer()
        })
      )
    })
    // The `chat_ready` gauge asks the same question at each scrape (prom-client collects with promises).
    const runPromise = Runtime.runPromise(yield* Effect.runtime<never>())
    ;(yield* Metrics).gauges({
      ready: () => runPromise(Effect.match(ready, { onFailure: () => false, onSuccess: (answer) => answer.status === "ready" }))
    })

    return handlers
      .handle("health", () => Effect.succeed({ status: "ok" as const }))
      .handle("ready", () => ready)
  }))
