import { HttpApiBuilder } from "@effect/platform"
import { SqlClient } from "@effect/sql"
import { Duration, Effect, Option } from "effect"
import { ServiceUnavailable } from "../../domain/Errors.js"
import { MigrationsDone } from "../../infra/sql/Migrations.js"
import { RedisConnection } from "../../infra/redis/Redis.js"
import { Pglite } from "../../infra/sql/Pglite.js"
import { Api } from "../Api.js"

export const SystemLive = HttpApiBuilder.group(Api, "system", (handlers) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    // Built only after migrations ran: a listening server has an up-to-date schema.
    yield* MigrationsDone
    const database = Option.isSome(yield* Effect.serviceOption(Pglite)) ? "pglite" as const : "postgres" as const
    const redis = yield* Effect.serviceOption(RedisConnection)
    const shared = () =>
      Option.match(redis, {
        onNone: () => "memory" as const,
        onSome: ({ client }) => client.status === "ready" ? "redis-up" as const : "redis-down" as const
      })

    return handlers
      .handle("health", () => Effect.succeed({ status: "ok" as const }))
      .handle("ready", () =>
        sql`SELECT 1`.pipe(
          Effect.timeoutFail({
            duration: Duration.seconds(2),
            onTimeout: () => new ServiceUnavailable({ message: "The database did not answer in time" })
          }),
          Effect.catchTag("SqlError", () => new ServiceUnavailable({ message: "The database is unreachable" })),
          Effect.map(() => {
            const via = shared()
            return { status: via === "redis-down" ? "degraded" as const : "ready" as const, database, shared: via }
          })
        ))
  }))
