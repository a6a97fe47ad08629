import * as Reactivity from "@effect/experimental/Reactivity"
import { Metrics } from "../../domain/ports/Metrics.js"
import { SqlClient, SqlError, Statement } from "@effect/sql"
import type { Connection } from "@effect/sql/SqlConnection"
import { PgClient } from "@effect/sql-pg"
import { PGlite, type Results } from "@electric-sql/pglite"
import { Context, Effect, Layer, Option, Stream } from "effect"
import { mkdir } from "node:fs/promises"
import * as DataDirLock from "./DataDirLock.js"

export interface PgliteConfig {
  /** A directory for a persistent database, or `memory://` for a throwaway one. */
  readonly dataDir: string
  readonly transformQueryNames?: (name: string) => string
  readonly transformResultNames?: (name: string) => string
}

/** The embedded PGlite instance behind the SqlClient, for callers that need it raw. */
export class Pglite extends Context.Tag("Infra/Pglite")<Pglite, PGlite>() {}

type TransformRows = (<A extends object>(rows: ReadonlyArray<A>) => ReadonlyArray<A>) | undefined

const rowsOf = (results: ReadonlyArray<Results<unknown>>) =>
  results.length === 1 ? results[0]!.rows : results.map((r) => r.rows)

/**
 * An `@effect/sql` client over PGlite, compiled as Postgres so every query is
 * written once. PGlite is one session: a semaphore lets one statement (or one
 * whole transaction) run at a time.
 */
export const make = (config: PgliteConfig) =>
  Effect.gen(function*() {
    const persistent = !config.dataDir.includes("://")
    if (persistent) {
      yield* Effect.tryPromise({
        try: () => mkdir(config.dataDir, { recursive: true }),
        catch: (cause) => new SqlError.SqlError({ cause, message: `Failed to open PGlite at ${config.dataDir}` })
      })
    }
    // Before opening: a second process on the same files would each see only its own writes.
    const lock = persistent
      ? Option.some(yield* DataDirLock.acquire(`${config.dataDir}.lock`, `The embedded database at ${config.dataDir}`))
      : Option.none()
    const db = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: async () => {
          const db = new PGlite(config.dataDir)
          await db.waitReady
          return db
        },
        catch: (cause) => new SqlError.SqlError({ cause, message: `Failed to open PGlite at ${config.dataDir}` })
      }),
      (db) => Effect.promise(() => db.close())
    )
    const session = yield* Effect.makeSemaphore(1)
    const metrics = yield* Metrics
    const fail = (cause: unknown) => {
      metrics.queryFailed()
      return new SqlError.SqlError({ cause, message: "Failed to execute statement" })
    }
    // One session: a statement running holds it, the others wait for it.
    let running = 0
    metrics.gauges({ dbPool: () => ({ in_use: running, idle: 1 - running, waiting: 0 }) })

    const run = (sql: string, params: ReadonlyArray<unknown>, rowMode: "object" | "array" = "object") =>
      metrics.enabled
        ? Effect.acquireUseRelease(Effect.sync(() => running = 1), () => statement(sql, params, rowMode), () => Effect.sync(() => running = 0))
        : statement(sql, params, rowMode)
    const statement = (sql: string, params: ReadonlyArray<unknown>, rowMode: "object" | "array") =>
      Effect.tryPromise({
        // Statements without parameters go through the simple protocol, which runs several at once (migrations).
        try: () =>
          params.length === 0
            ? db.exec(sql, { rowMode }).then(rowsOf)
            : db.query(sql, [...params], { rowMode }).then((r) => r.rows),
        catch: fail
      })

    const connection = (serialize: <A, E>(effect: Effect.Effect<A, E>) => Effect.Effect<A, E>): Connection => {
      const execute = (sql: string, params: ReadonlyArray<unknown>, transformRows: TransformRows) =>
        serialize(run(sql, params)).pipe(
          Effect.map((rows) => transformRows ? transformRows(rows as ReadonlyArray<object>) : rows)
        ) as Effect.Effect<ReadonlyArray<any>, SqlError.SqlError>
      return {
        execute,
        executeUnprepared: execute,
        executeRaw: (sql, params) =>
          serialize(Effect.tryPromise({ try: () => db.query(sql, [...params]), catch: fail })),
        executeValues: (sql, params) =>
          serialize(run(sql, params, "array")) as Effect.Effect<
            ReadonlyArray<ReadonlyArray<unknown>>,
            SqlError.SqlError
          >,
        executeStream: (sql, params, transformRows) =>
          Stream.fromIterableEffect(execute(sql, params, transformRows))
      }
    }

    const standalone = connection(session.withPermits(1))
    // A transaction holds the session from BEGIN to COMMIT; its statements must not take it again.
    const inTransaction = connection((effect) => effect)
    const reserve = Effect.as(
      Effect.acquireRelease(session.take(1), () => session.release(1)),
      inTransaction
    )

    const compiler = PgClient.makeCompiler(config.transformQueryNames)
    const client = yield* SqlClient.make({
      acquirer: Effect.succeed(standalone),
      transactionAcquirer: reserve,
      compiler,
      spanAttributes: [["db.system.name", "postgresql"], ["db.namespace", "pglite"]],
      transformRows: config.transformResultNames
        ? Statement.defaultTransforms(config.transformResultNames).array
        : undefined
    })
    return { client, db, lock } as const
  })

export const layer = (
  config: PgliteConfig
): Layer.Layer<SqlClient.SqlClient | Pglite, SqlError.SqlError | DataDirLock.DataDirInUse> =>
  Layer.scopedContext(
    Effect.map(make(config), ({ client, db, lock }) => {
      const context = Context.make(SqlClient.SqlClient, client).pipe(Context.add(Pglite, db))
      return Option.isSome(lock) ? Context.add(context, DataDirLock.DataDirLock, lock.value) : context
    })
  ).pipe(Layer.provide(Reactivity.layer))
