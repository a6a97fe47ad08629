import { SqlError } from "@effect/sql/SqlError"
import { PgClient } from "@effect/sql-pg"
import { Config, Effect, Layer, Option, Redacted, String } from "effect"
import * as NodePath from "node:path"
import Pg from "pg"
import { Metrics, type MetricsShape } from "../../domain/ports/Metrics.js"
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

/**
 * The `pg` pool, as `PgClient.layer` makes it, kept here so that its connections (in use, idle, waited for) and
 * its failed statements can be counted.
 */
const pool = (config: PgClient.PgClientConfig, metrics: MetricsShape) =>
  Effect.acquireRelease(
    Effect.gen(function*() {
      const pool = new Pg.Pool({
        ...(config.url === undefined ? {} : { connectionString: Redacted.value(config.url) }),
        ...(config.host === undefined ? {} : { host: config.host }),
        ...(config.port === undefined ? {} : { port: config.port }),
        ...(config.username === undefined ? {} : { user: config.username }),
        ...(config.database === undefined ? {} : { database: config.database }),
        ...(config.password === undefined ? {} : { password: Redacted.value(config.password) }),
        ...(config.maxConnections === undefined ? {} : { max: config.maxConnections }),
        application_name: config.applicationName ?? "trainer-chat"
      })
      // Errors of idle connections are reported through the next statement; the event needs a listener.
      pool.on("error", () => {})
      if (metrics.enabled) {
        countConnectFailures(pool, metrics.queryFailed)
        pool.on("connect", (client) => countFailures(client, metrics.queryFailed))
        metrics.gauges({
          dbPool: () => ({ in_use: pool.totalCount - pool.idleCount, idle: pool.idleCount, waiting: pool.waitingCount })
        })
      }
      yield* Effect.tryPromise({
        try: () => pool.query("SELECT 1"),
        catch: (cause) => new SqlError({ cause, message: "PgClient: Failed to connect" })
      }).pipe(
        Effect.timeoutFail({
          duration: "5 seconds",
          onTimeout: () => new SqlError({ cause: new Error("Connection timed out"), message: "PgClient: Connection timed out" })
        }),
        Effect.tapError(() => Effect.promise(() => pool.end().catch(() => undefined)))
      )
      return pool
    }),
    (pool) => Effect.promise(() => pool.end()).pipe(Effect.interruptible, Effect.timeoutOption(1000))
  )

/**
 * Every statement of the connection that fails is told to `failed`. `@effect/sql-pg` runs statements with a
 * callback (`query(text, values, done)`); a statement without one (a cursor, a promise) is counted when it
 * rejects.
 */
const countFailures = (client: Pg.PoolClient, failed: () => void) => {
  const query: (...args: Array<unknown>) => unknown = client.query
  Object.defineProperty(client, "query", {
    configurable: true,
    value: (...args: Array<unknown>) => {
      const done = args.at(-1)
      if (typeof done === "function") {
        args[args.length - 1] = (error: unknown, result: unknown) => {
          if (error) failed()
          return Reflect.apply(done, undefined, [error, result])
        }
      }
      const answer = Reflect.apply(query, client, args)
      if (answer instanceof Promise) answer.catch(failed)
      return answer
    }
  })
}

/** A statement that could not get a connection (the database away) failed too. */
const countConnectFailures = (pool: Pg.Pool, failed: () => void) => {
  const connect: (...args: Array<unknown>) => unknown = pool.connect
  Object.defineProperty(pool, "connect", {
    configurable: true,
    value: (...args: Array<unknown>) => {
      const done = args[0]
      if (typeof done === "function") {
        return Reflect.apply(connect, pool, [(error: unknown, ...rest: Array<unknown>) => {
          if (error) failed()
          return Reflect.apply(done, undefined, [error, ...rest])
        }])
      }
      const answer = Reflect.apply(connect, pool, args)
      if (answer instanceof Promise) answer.catch(failed)
      return answer
    }
  })
}

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
      const metrics = yield* Metrics
      return PgClient.layerFromPool({ acquire: pool(postgres.value, metrics), applicationName: "trainer-chat", ...names }).pipe(
        Layer.tap(() => Effect.logInfo("Database: PostgreSQL"))
      )
    }
    const dataDir = NodePath.resolve(yield* DataDir, "pglite")
    return Pglite.layer({ dataDir, ...names }).pipe(
      Layer.tap(() => Effect.logInfo(`Database: embedded PGlite at ${dataDir}`))
    )
  })
)
