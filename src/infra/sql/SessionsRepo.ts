import { SqlClient } from "@effect/sql"
import { Effect, Layer, Option } from "effect"
import { SessionsRepo, type StoredSession } from "../../domain/ports/SessionsRepo.js"
import type { UserId } from "../../domain/users/Model.js"
import type { SessionId } from "../../domain/users/Sessions.js"

type Row = { readonly [K in keyof StoredSession]: StoredSession[K] extends Date ? Date | string : StoredSession[K] extends Date | null ? Date | string | null : StoredSession[K] }

const date = (d: Date | string) => new Date(d)
const session = (row: Row): StoredSession => ({
  ...row,
  rotatedAt: row.rotatedAt === null ? null : date(row.rotatedAt),
  createdAt: date(row.createdAt),
  lastUsedAt: date(row.lastUsedAt),
  expiresAt: date(row.expiresAt),
  revokedAt: row.revokedAt === null ? null : date(row.revokedAt)
})

export const layer = Layer.effect(
  SessionsRepo,
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const one = (rows: ReadonlyArray<Row>) => Option.map(Option.fromNullable(rows[0]), session)
    const orDie = <A, E>(name: string, effect: Effect.Effect<A, E>) =>
      effect.pipe(Effect.orDie, Effect.withSpan(`SessionsRepo.${name}`))

    return SessionsRepo.of({
      create: (s) =>
        orDie(
          "create",
          sql<Row>`
            INSERT INTO sessions (user_id, device_name, refresh_hash, expires_at)
            VALUES (${s.userId}, ${s.deviceName}, ${s.refreshHash}, ${s.expiresAt.toISOString()}::timestamptz)
            RETURNING *`.pipe(Effect.map((rows) => session(rows[0]!)))
        ),
      rotate: (oldHash, newHash, expiresAt) =>
        orDie(
          "rotate",
          sql<Row>`
            UPDATE sessions SET refresh_hash = ${newHash}, previous_hash = refresh_hash, rotated_at = now(),
              last_used_at = now(), expires_at = ${expiresAt.toISOString()}::timestamptz
            WHERE refresh_hash = ${oldHash} AND revoked_at IS NULL AND expires_at > now()
            RETURNING *`.pipe(Effect.map(one))
        ),
      findByPrevious: (hash) =>
        orDie("findByPrevious", sql<Row>`SELECT * FROM sessions WHERE previous_hash = ${hash}`.pipe(Effect.map(one))),
      revoke: (id, userId) =>
        orDie(
          "revoke",
          sql<Row>`
            UPDATE sessions SET revoked_at = now()
            WHERE id = ${id} AND revoked_at IS NULL ${userId === undefined ? sql`` : sql`AND user_id = ${userId}`}
            RETURNING *`.pipe(Effect.map(one))
        ),
      revokeAll: (userId) =>
        orDie(
          "revokeAll",
          sql<Row>`UPDATE sessions SET revoked_at = now() WHERE user_id = ${userId} AND revoked_at IS NULL RETURNING id`.pipe(
            Effect.map((rows) => rows.map((r) => r.id))
          )
        ),
      list: (userId) =>
        orDie(
          "list",
          sql<Row>`
            SELECT * FROM sessions WHERE user_id = ${userId} AND revoked_at IS NULL AND expires_at > now()
            ORDER BY created_at, id`.pipe(Effect.map((rows) => rows.map(session)))
        ),
      createTicket: (t) =>
        orDie(
          "createTicket",
          Effect.zipRight(
            sql`DELETE FROM ws_tickets WHERE expires_at < now()`,
            sql`
              INSERT INTO ws_tickets (hash, user_id, session_id, expires_at, token_expires_at)
              VALUES (${t.hash}, ${t.userId}, ${t.sessionId}, ${t.expiresAt.toISOString()}::timestamptz,
                      ${t.tokenExpiresAt.toISOString()}::timestamptz)`
          ).pipe(Effect.asVoid)
        ),
      redeemTicket: (hash) =>
        orDie(
          "redeemTicket",
          sql<{ readonly userId: UserId; readonly sessionId: SessionId | null; readonly tokenExpiresAt: Date | string }>`
            DELETE FROM ws_tickets WHERE hash = ${hash} AND expires_at > now()
            RETURNING user_id, session_id, token_expires_at`.pipe(
            Effect.map((rows) =>
              Option.map(Option.fromNullable(rows[0]), (r) => ({ ...r, tokenExpiresAt: new Date(r.tokenExpiresAt) }))
            )
          )
        ),
      createReset: (r) =>
        orDie(
          "createReset",
          Effect.zipRight(
            sql`DELETE FROM password_resets WHERE expires_at < now() - interval '1 day'`,
            sql`
              INSERT INTO password_resets (hash, user_id, expires_at)
              VALUES (${r.hash}, ${r.userId}, ${r.expiresAt.toISOString()}::timestamptz)`
          ).pipe(Effect.asVoid)
        ),
      useReset: (hash) =>
        orDie(
          "useReset",
          sql<{ readonly userId: UserId }>`
            UPDATE password_resets SET used_at = now()
            WHERE hash = ${hash} AND used_at IS NULL AND expires_at > now()
            RETURNING user_id`.pipe(Effect.map((rows) => Option.map(Option.fromNullable(rows[0]), (r) => r.userId)))
        ),
      live: (id) =>
        orDie(
          "live",
          sql<{ readonly n: number }>`
            SELECT count(*)::int AS n FROM sessions WHERE id = ${id} AND revoked_at IS NULL AND expires_at > now()`.pipe(
            Effect.map((rows) => (rows[0]?.n ?? 0) > 0)
          )
        )
    })
  })
)
