import * as Reactivity from "@effect/experimental/Reactivity"
import type { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { PgClient } from "@effect/sql-pg"
import { Effect, Option, Redacted, type Scope } from "effect"
import * as Crypto from "node:crypto"
import { tempDir } from "./TempDir.js"

/**
 * Where a test suite keeps its data, chosen from the environment: with
 * `DATABASE_URL`, a fresh database on that server, dropped at the end;
 * without, a fresh PGlite directory, removed at the end. Returns the
 * configuration entries that point the app at it.
 */
export const freshDatabase: Effect.Effect<Record<string, string>, SqlError, Scope.Scope> = Effect.gen(
  function*() {
    const url = Option.fromNullable(process.env.DATABASE_URL).pipe(Option.filter((u) => u !== ""))
    if (Option.isNone(url)) {
      const dir = yield* tempDir("chat-test-")
      return { DATA_DIR: dir }
    }
    const name = `chat_test_${Crypto.randomBytes(6).toString("hex")}`
    const admin = new URL(url.value)
    yield* Effect.acquireRelease(
      withAdmin(admin, (sql) => sql`CREATE DATABASE ${sql(name)}`),
      () => withAdmin(admin, (sql) => sql`DROP DATABASE IF EXISTS ${sql(name)} WITH (FORCE)`).pipe(Effect.orDie)
    )
    const target = new URL(admin)
    target.pathname = `/${name}`
    return { DATABASE_URL: target.toString() }
  }
)

const withAdmin = <A, E>(url: URL, f: (sql: SqlClient.SqlClient) => Effect.Effect<A, E>) =>
  Effect.scoped(
    Effect.flatMap(
      PgClient.make({ url: Redacted.make(url.toString()), maxConnections: 1 }),
      (sql) => f(sql)
    )
  ).pipe(Effect.provide(Reactivity.layer))

/**
 * With `REDIS_URL`, the app's shared layers run on that Redis under a fresh
 * key prefix whose keys are deleted at the end; without, nothing (in-memory layers).
 */
export const freshRedis: Effect.Effect<Record<string, string>, never, Scope.Scope> = Effect.gen(function*() {
  const url = process.env.REDIS_URL
  if (url === undefined || url === "") return {}
  const prefix = `chat-test:${Crypto.randomBytes(6).toString("hex")}:`
  yield* Effect.addFinalizer(() =>
    Effect.promise(async () => {
      const { Redis } = await import("ioredis")
      const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 })
      client.on("error", () => {})
      try {
        await client.connect()
        let cursor = "0"
        do {
          const [next, keys] = await client.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 500)
          cursor = next
          if (keys.length > 0) await client.del(...keys)
        } while (cursor !== "0")
      } catch {
        // Redis gone (a fault test): nothing to clean.
      } finally {
        client.disconnect()
      }
    })
  )
  return { REDIS_URL: url, REDIS_PREFIX: prefix }
})
