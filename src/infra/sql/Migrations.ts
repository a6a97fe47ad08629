import { Migrator, SqlClient } from "@effect/sql"
import { Metrics } from "../../domain/ports/Metrics.js"
import { Effect, Layer } from "effect"
import Init from "./migrations/0001_create_users_conversations_messages.js"
import ReadStateAndAudit from "./migrations/0002_read_state_and_audit_log.js"
import Attachments from "./migrations/0003_attachments.js"
import TokensValidAfter from "./migrations/0004_tokens_valid_after.js"
import AppendMessages from "./migrations/0005_append_messages.js"
import AppendMessagesKeyed from "./migrations/0006_append_messages_keyed.js"
import AppendReturnsLess from "./migrations/0007_append_returns_less.js"
import Push from "./migrations/0008_push.js"
import Webhooks from "./migrations/0009_webhooks.js"
import Sessions from "./migrations/0010_sessions.js"

const table = "effect_sql_migrations"

// Never renumber: an id names a migration that may already have run somewhere.
const loader = Migrator.fromRecord({
  "0001_create_users_conversations_messages": Init,
  "0002_read_state_and_audit_log": ReadStateAndAudit,
  "0003_attachments": Attachments,
  "0004_tokens_valid_after": TokensValidAfter,
  "0005_append_messages": AppendMessages,
  "0006_append_messages_keyed": AppendMessagesKeyed,
  "0007_append_returns_less": AppendReturnsLess,
  "0008_push": Push,
  "0009_webhooks": Webhooks,
  "0010_sessions": Sessions
})

/** Readiness flag: set once this process has seen the schema up to date. */
export class MigrationsDone extends Effect.Service<MigrationsDone>()("Infra/MigrationsDone", {
  succeed: { done: true as const }
}) {}

/**
 * Runs pending migrations in one transaction under an advisory lock, so that
 * instances starting together run them once: the others wait, then find
 * nothing left to do.
 */
export const run = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const migrate = Migrator.make({})
  const completed = yield* sql.withTransaction(
    Effect.gen(function*() {
      yield* sql`SELECT pg_advisory_xact_lock(hashtext(${table}))`
      yield* sql`CREATE TABLE IF NOT EXISTS ${sql(table)} (
        migration_id integer PRIMARY KEY,
        created_at timestamptz NOT NULL DEFAULT now(),
        name text NOT NULL
      )`
      return yield* migrate({ loader, table })
    })
  )
  yield* Effect.logInfo(
    completed.length === 0 ? "Migrations: up to date" : `Migrations: ran ${completed.map(([id, name]) => `${id}_${name}`).join(", ")}`
  )
  const metrics = yield* Metrics
  if (metrics.enabled) {
    const [applied] = yield* sql<{ readonly count: number }>`SELECT count(*)::int AS count FROM ${sql(table)}`
    metrics.gauges({ migrationsApplied: () => applied?.count ?? 0 })
  }
}).pipe(Effect.withSpan("Migrations.run"))

export const layer = Layer.effect(MigrationsDone, Effect.as(run, new MigrationsDone({ done: true })))
