import { SqlClient } from "@effect/sql"
import { expect, layer } from "@effect/vitest"
import { Effect, Exit, String } from "effect"
import * as Pglite from "../../src/infra/sql/Pglite.js"
import { isUniqueViolation } from "../../src/infra/sql/Errors.js"

const Memory = Pglite.layer({
  dataDir: "memory://",
  transformQueryNames: String.camelToSnake,
  transformResultNames: String.snakeToCamel
})

layer(Memory, { excludeTestServices: true })("PGlite SqlClient", (it) => {
  it.effect("maps names both ways and runs several statements at once", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql`CREATE TABLE counters (counter_name text PRIMARY KEY, counter_value int NOT NULL); CREATE TABLE other (id int)`
      yield* sql`INSERT INTO counters ${sql.insert({ counterName: "a", counterValue: 0 })}`
      const rows = yield* sql<{ counterName: string; counterValue: number }>`SELECT * FROM counters`
      expect(rows).toEqual([{ counterName: "a", counterValue: 0 }])
    }))

  it.effect("transactions run one at a time: concurrent read-modify-writes lose nothing", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const increment = sql.withTransaction(Effect.gen(function*() {
        const [row] = yield* sql<{ counterValue: number }>`SELECT counter_value FROM counters WHERE counter_name = 'a'`
        yield* Effect.sleep("1 millis")
        yield* sql`UPDATE counters SET counter_value = ${row!.counterValue + 1} WHERE counter_name = 'a'`
      }))
      yield* Effect.all(Array.from({ length: 50 }, () => increment), { concurrency: "unbounded" })
      const [row] = yield* sql<{ counterValue: number }>`SELECT counter_value FROM counters WHERE counter_name = 'a'`
      expect(row!.counterValue).toBe(50)
    }))

  it.effect("a failed transaction rolls back, and unique violations are recognised by constraint", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const exit = yield* sql.withTransaction(Effect.gen(function*() {
        yield* sql`INSERT INTO counters ${sql.insert({ counterName: "b", counterValue: 1 })}`
        yield* sql`INSERT INTO counters ${sql.insert({ counterName: "b", counterValue: 2 })}`
      })).pipe(Effect.exit)
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isFailure(exit)) {
        const error = exit.cause._tag === "Fail" ? exit.cause.error : undefined
        expect(isUniqueViolation("counters_pkey")(error)).toBe(true)
        expect(isUniqueViolation("other_key")(error)).toBe(false)
      }
      const rows = yield* sql`SELECT * FROM counters WHERE counter_name = 'b'`
      expect(rows).toEqual([])
      // The lock was released: the client still answers.
      expect(yield* sql<{ one: number }>`SELECT 1 AS one`).toEqual([{ one: 1 }])
    }))
})
