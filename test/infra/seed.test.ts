import { SqlClient } from "@effect/sql"
import { expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, Logger, LogLevel } from "effect"
import { accounts, seed, SeedLive } from "../../src/seed.js"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { freshDatabase } from "../support/Database.js"
import { runScript } from "../support/Processes.js"
import { tempDir } from "../support/TempDir.js"

it.live("the seed creates 1 admin, 2 trainers and 4 assigned users, and running it twice changes nothing", () =>
  Effect.gen(function*() {
    const database = yield* freshDatabase
    const live = SeedLive.pipe(Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(database))))))
    const snapshot = Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      return yield* sql<{ email: string; role: string; trainer: string | null; updatedAt: Date }>`
        SELECT u.email, u.role, t.email AS trainer, u.updated_at
        FROM users u LEFT JOIN users t ON t.id = u.assigned_trainer_id ORDER BY u.email`
    })
    const [first, second] = yield* Effect.gen(function*() {
      yield* seed
      const first = yield* snapshot
      yield* seed
      return [first, yield* snapshot] as const
    }).pipe(Effect.provide(live))

    expect(first).toEqual(second)
    expect(first.map((u) => [u.email, u.role, u.trainer])).toEqual(
      [...accounts]
        .sort((a, b) => a.email.localeCompare(b.email))
        .map((a) => [a.email, a.role, a.trainer ?? null])
    )
    expect(first.filter((u) => u.role === "admin")).toHaveLength(1)
    expect(first.filter((u) => u.role === "trainer")).toHaveLength(2)
    expect(first.filter((u) => u.role === "user" && u.trainer !== null)).toHaveLength(4)
  }).pipe(Effect.scoped, Effect.provide(Logger.minimumLogLevel(LogLevel.Warning))))

it.live("with NODE_ENV=production the seed refuses (nothing written) unless forced with SEED_FORCE=1 or --force", () =>
  Effect.gen(function*() {
    const dataDir = yield* tempDir("seed-production-")
    const env = { NODE_ENV: "production", DATA_DIR: dataDir, LOG_LEVEL: "Warn" }

    const refused = yield* runScript("src/seed.ts", env)
    expect(refused.code).toBe(1)
    expect(refused.stderr.trim().split("\n")).toHaveLength(1)
    expect(refused.stderr).toContain("NODE_ENV=production")
    expect(refused.stderr).toContain("SEED_FORCE=1")
    expect(refused.stdout).not.toContain("admin-password")
    // The database was not even created.
    expect(Fs.existsSync(Path.join(dataDir, "pglite"))).toBe(false)

    const forced = yield* runScript("src/seed.ts", { ...env, SEED_FORCE: "1" })
    expect(forced.code).toBe(0)
    expect(forced.stdout).toContain("Seeded development accounts")
    const flag = yield* runScript("src/seed.ts", env, { args: ["--force"] })
    expect(flag.code).toBe(0)
  }).pipe(Effect.scoped), 120_000)
