import { SqlClient } from "@effect/sql"
import { expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, Logger, LogLevel } from "effect"
import * as SqlClientLive from "../../src/infra/sql/Client.js"
import * as Migrations from "../../src/infra/sql/Migrations.js"
import { freshDatabase } from "../support/Database.js"

const clientOn = (config: Record<string, string>) =>
  SqlClientLive.layer.pipe(Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(config))))))

it.live("migrations create the schema once, even when instances start together", () =>
  Effect.gen(function*() {
    const database = yield* freshDatabase
    const schema = Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const tables = yield* sql<{ tableName: string }>`
        SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name`
      const migrations = yield* sql<{ migrationId: number }>`SELECT migration_id FROM effect_sql_migrations ORDER BY migration_id`
      return { tables: tables.map((t) => t.tableName), migrations: migrations.map((m) => m.migrationId) }
    })

    if (database.DATABASE_URL !== undefined) {
      // Two instances: two separate pools on one database, migrating at the same moment.
      yield* Effect.all([
        Effect.provide(Migrations.run, clientOn(database)),
        Effect.provide(Migrations.run, clientOn(database))
      ], { concurrency: "unbounded" })
    } else {
      // PGlite is one process's database: a second start finds nothing to do.
      yield* Effect.provide(Effect.zipRight(Migrations.run, Migrations.run), clientOn(database))
    }
    const after = yield* Effect.provide(Effect.zipRight(Migrations.run, schema), clientOn(database))
    expect(after.tables).toEqual([
      "attachments", "audit_log", "conversations", "effect_sql_migrations", "messages", "notification_settings",
      "password_resets", "push_devices", "push_jobs", "push_sent", "sessions", "users", "webhook_deliveries", "webhook_jobs",
      "webhook_lines", "webhooks", "ws_tickets"
    ])
    expect(after.migrations).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
  }).pipe(Effect.scoped, Effect.provide(Logger.minimumLogLevel(LogLevel.Warning))))
