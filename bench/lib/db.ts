import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { Effect, ManagedRuntime, Redacted } from "effect"
import * as Crypto from "node:crypto"

/** A small Postgres connection for the bench's own queries (raw column names, no transforms). */
export interface Db {
  readonly url: string
  readonly query: <Row extends object = Record<string, unknown>>(
    text: string,
    params?: ReadonlyArray<unknown>
  ) => Promise<ReadonlyArray<Row>>
  readonly close: () => Promise<void>
}

export const connect = async (url: string): Promise<Db> => {
  const runtime = ManagedRuntime.make(
    PgClient.layer({ url: Redacted.make(url), maxConnections: 1, applicationName: "bench-http" })
  )
  // Fail here, not at the first query, when the server is unreachable.
  await runtime.runPromise(Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe("SELECT 1")))
  return {
    url,
    query: <Row extends object>(text: string, params: ReadonlyArray<unknown> = []) =>
      runtime.runPromise(
        Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe<Row>(text, params as Array<unknown>))
      ),
    close: () => runtime.dispose()
  }
}

/** `CREATE DATABASE bench_http_<random>` on `adminUrl`'s server; `drop` removes it, connections and all. */
export const createDatabase = async (adminUrl: string) => {
  const admin = await connect(adminUrl)
  const name = `bench_http_${Crypto.randomBytes(6).toString("hex")}`
  try {
    await admin.query(`CREATE DATABASE ${name}`)
  } catch (error) {
    await admin.close()
    throw error
  }
  const target = new URL(adminUrl)
  target.pathname = `/${name}`
  let dropped = false
  return {
    name,
    url: target.toString(),
    /** Postgres's `SELECT version()`. */
    version: async () => ((await admin.query<{ version: string }>("SELECT version()"))[0]?.version ?? "unknown"),
    drop: async () => {
      if (dropped) return
      dropped = true
      try {
        await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      } finally {
        await admin.close()
      }
    }
  }
}

/** Counters of the bench database and the cluster's WAL position, to difference around a scenario. */
export interface DbCounters {
  readonly xactCommit: number
  readonly xactRollback: number
  readonly tupInserted: number
  readonly tupUpdated: number
  readonly tupReturned: number
  readonly tupFetched: number
  readonly blksHit: number
  readonly blksRead: number
  readonly walLsn: string
}

export const counters = async (db: Db): Promise<DbCounters> => {
  const [row] = await db.query<Record<string, string | number>>(
    `SELECT xact_commit::float8 AS xact_commit, xact_rollback::float8 AS xact_rollback,
            tup_inserted::float8 AS tup_inserted, tup_updated::float8 AS tup_updated,
            tup_returned::float8 AS tup_returned, tup_fetched::float8 AS tup_fetched,
            blks_hit::float8 AS blks_hit, blks_read::float8 AS blks_read,
            pg_current_wal_lsn()::text AS wal_lsn
       FROM pg_stat_database WHERE datname = current_database()`
  )
  if (row === undefined) throw new Error("pg_stat_database has no row for the bench database")
  return {
    xactCommit: Number(row.xact_commit),
    xactRollback: Number(row.xact_rollback),
    tupInserted: Number(row.tup_inserted),
    tupUpdated: Number(row.tup_updated),
    tupReturned: Number(row.tup_returned),
    tupFetched: Number(row.tup_fetched),
    blksHit: Number(row.blks_hit),
    blksRead: Number(row.blks_read),
    walLsn: String(row.wal_lsn)
  }
}

export const walBytesBetween = async (db: Db, from: string, to: string) =>
  Number(
    (await db.query<{ bytes: string }>("SELECT pg_wal_lsn_diff($1::pg_lsn, $2::pg_lsn)::float8 AS bytes", [to, from]))[0]
      ?.bytes ?? Number.NaN
  )
