import { PgClient } from "@effect/sql-pg"
import { Config, Effect, Layer, Option, String } from "effect"
import * as NodePath from "node:path"
import * as Pglite from "./Pglite.js"

const names = {
  transformQueryNames: String.camelToSnake,
  transformResultNames: String.snakeToCamel
} as const

/** `DATABASE_URL` or the original's `DB_*` variables; `None` when neither is set. */
export const PostgresConfig = Config.all({
  url: Config.option(Config.redacted("DATABASE_URL")),
  host: Config.option(Config.string("DB_HOST")),
  port: Config.integer("DB_PORT").pipe(Config.withDefault(5432)),
  username: Config.string("DB_USERNAME").pipe(Config.withDefault("postgres")),
  password: Config.option(Config.redacted("DB_PASSWORD")),
  database: Config.string("DB_NAME").pipe(Config.withDefault("trainer_chat")),
  maxConnections: Config.integer("DB_POOL_MAX").pipe(Config.withDefault(20))
}).pipe(Config.map((c) =>
  Option.isNone(c.url) && Option.isNone(c.host)
    ? Option.none()
    : Option.some<PgClient.PgClientConfig>({
      ...Option.match(c.url, {
        onSome: (url) => ({ url }),
        onNone: () => ({
          host: Option.getOrUndefined(c.host),
          port: c.port,
          username: c.username,
          database: c.database,
          password: Option.getOrUndefined(c.password)
        })
      }),
      maxConnections: c.maxConnections,
      applicationName: "trainer-chat"
    })
))

export const DataDir = Config.string("DATA_DIR").pipe(Config.withDefault("./data"))

export type Backend = "postgres" | "pglite"

/**
 * The SqlClient: Postgres when it is configured, otherwise the embedded PGlite
 * under `DATA_DIR`. Both compile the same queries.
 */
export const layer = Layer.unwrapEffect(
  Effect.gen(function*() {
    const postgres = yield* PostgresConfig
    if (Option.isSome(postgres)) {
      return PgClient.layer({ ...postgres.value, ...names }).pipe(
        Layer.tap(() => Effect.logInfo("Database: PostgreSQL"))
      )
    }
    const dataDir = NodePath.resolve(yield* DataDir, "pglite")
    return Pglite.layer({ dataDir, ...names }).pipe(
      Layer.tap(() => Effect.logInfo(`Database: embedded PGlite at ${dataDir}`))
    )
  })
)
