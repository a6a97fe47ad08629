import { SqlClient, SqlSchema } from "@effect/sql"
import { Effect, Layer, Schema } from "effect"
import { AuditEntry } from "../../domain/audit/Model.js"
import { wellFormed } from "../../domain/Fields.js"
import { AuditLog } from "../../domain/ports/AuditLog.js"

const Total = Schema.Struct({ total: Schema.Number })

// jsonb refuses a lone surrogate (and NUL) that JSON text can carry: details are made storable.
const jsonbSafe = (_key: string, value: unknown) =>
  typeof value === "string" ? wellFormed(value).replaceAll("\0", "\uFFFD") : value

export const layer = Layer.effect(
  AuditLog,
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient

    const list = (page: { readonly limit: number; readonly offset: number }) =>
      Effect.all({
        items: SqlSchema.findAll({
          Request: Schema.Void,
          Result: AuditEntry,
          execute: () =>
            sql`SELECT id::text AS id, actor_id, action, target_id, details, created_at FROM audit_log ORDER BY created_at DESC, id DESC LIMIT ${page.limit} OFFSET ${page.offset}`
        })(undefined),
        total: SqlSchema.single({
          Request: Schema.Void,
          Result: Total,
          execute: () => sql`SELECT count(*)::int AS total FROM audit_log`
        })(undefined).pipe(Effect.map((row) => row.total))
      })

    return AuditLog.of({
      record: (entry) =>
        sql`INSERT INTO audit_log (actor_id, action, target_id, details)
            VALUES (${entry.actorId}, ${entry.action}, ${entry.targetId},
                    ${entry.details === null ? null : JSON.stringify(entry.details, jsonbSafe)}::jsonb)`.pipe(
          Effect.asVoid,
          Effect.orDie,
          Effect.withSpan("AuditLog.record")
        ),
      list: (page) => list(page).pipe(Effect.orDie, Effect.withSpan("AuditLog.list"))
    })
  })
)
