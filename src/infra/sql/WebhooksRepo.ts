import { SqlClient } from "@effect/sql"
import { Effect, Layer, Option } from "effect"
import type { ClaimedLine, DeliveryRow, LineResult, StoredWebhook, WebhookJob } from "../../domain/ports/WebhooksRepo.js"
import { WebhooksRepo } from "../../domain/ports/WebhooksRepo.js"
import type { EventType, WebhookId } from "../../domain/webhooks/Model.js"
import { arrayLiteral } from "./MessagesRepo.js"

interface WebhookRow extends Omit<StoredWebhook, "createdAt"> {
  readonly createdAt: Date | string
}

const webhook = (row: WebhookRow): StoredWebhook => ({
  id: row.id,
  url: row.url,
  events: row.events,
  description: row.description,
  secret: row.secret,
  createdAt: new Date(row.createdAt)
})

interface JobRow {
  readonly id: string | number | bigint
  readonly webhookId: WebhookId
  readonly orderKey: string
  readonly eventId: string
  readonly type: EventType
  readonly data: string
  readonly createdAt: Date | string
  readonly attempts: number
}

/** A Postgres array literal of values that need no quoting (ids, numbers, booleans). */
const plain = (values: ReadonlyArray<string | number | boolean>) => `{${values.join(",")}}`


export const layer = Layer.effect(
  WebhooksRepo,
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient

    const columns = sql`id, url, events, description, secret, created_at`

    const claim = (owner: string, limit: number, leaseMs: number, perLine: number) =>
      Effect.gen(function*() {
        const lines = yield* sql<{ readonly webhookId: WebhookId; readonly orderKey: string }>`
          UPDATE webhook_lines l SET locked_by = ${owner},
            locked_until = now() + make_interval(secs => ${leaseMs / 1000}::float8)
          FROM (
            SELECT webhook_id, order_key FROM webhook_lines
            WHERE run_at <= now() AND (locked_until IS NULL OR locked_until < now())
            ORDER BY run_at
            LIMIT ${limit}
            FOR UPDATE SKIP LOCKED
          ) due
          WHERE l.webhook_id = due.webhook_id AND l.order_key = due.order_key
          RETURNING l.webhook_id, l.order_key`
        if (lines.length === 0) return []
        const [hooks, jobs] = yield* Effect.all([
          sql<WebhookRow>`SELECT ${columns} FROM webhooks
            WHERE id = ANY (${plain([...new Set(lines.map((l) => l.webhookId))])}::uuid[])`,
          sql<JobRow>`
            SELECT j.id, j.webhook_id, j.order_key, j.event_id, j.type, j.data::text AS data, j.created_at, j.attempts
            FROM unnest(${plain(lines.map((l) => l.webhookId))}::uuid[], ${plain(lines.map((l) => l.orderKey))}::uuid[])
              AS l(webhook_id, order_key)
            CROSS JOIN LATERAL (
              SELECT * FROM webhook_jobs j
              WHERE j.webhook_id = l.webhook_id AND j.order_key = l.order_key AND j.state = 'pending'
              ORDER BY j.id LIMIT ${perLine}
            ) j
            ORDER BY j.id`
        ])
        const byId = new Map(hooks.map((h) => [h.id, webhook(h)]))
        const out = new Map<string, { webhook: StoredWebhook; orderKey: string; jobs: Array<WebhookJob> }>()
        for (const l of lines) {
          const hook = byId.get(l.webhookId)
          if (hook !== undefined) out.set(`${l.webhookId}/${l.orderKey}`, { webhook: hook, orderKey: l.orderKey, jobs: [] })
        }
        for (const j of jobs) {
          out.get(`${j.webhookId}/${j.orderKey}`)?.jobs.push({
            id: String(j.id),
            eventId: j.eventId,
            type: j.type,
            data: j.data,
            createdAt: new Date(j.createdAt),
            attempts: j.attempts
          })
        }
        return [...out.values()] as ReadonlyArray<ClaimedLine>
      })

    /**
     * One transaction. The lines are locked first (in key order, as the triggers lock them), so that an event
     * being written to a line is committed, and seen by the next statement, before an empty line is removed.
     */
    const finish = (owner: string, results: ReadonlyArray<LineResult>) =>
      results.length === 0 ? Effect.void : sql.withTransaction(Effect.gen(function*() {
        const attempts = results.flatMap((r) => r.attempts)
        if (attempts.length > 0) {
          yield* sql`
            INSERT INTO webhook_deliveries (webhook_id, event_id, type, attempt, status, latency_ms, error, delivered)
            SELECT * FROM unnest(
              ${plain(results.flatMap((r) => r.attempts.map(() => r.webhookId)))}::uuid[],
              ${plain(attempts.map((a) => a.job.eventId))}::uuid[],
              ${plain(attempts.map((a) => a.job.type))}::text[],
              ${plain(attempts.map((a) => a.job.attempts + 1))}::int[],
              ${arrayLiteral(attempts.map((a) => a.attempt.status === null ? null : String(a.attempt.status)))}::int[],
              ${plain(attempts.map((a) => Math.round(a.attempt.latencyMs)))}::int[],
              ${arrayLiteral(attempts.map((a) => a.attempt._tag === "Failed" ? a.attempt.error.slice(0, 500) : null))}::text[],
              ${plain(attempts.map((a) => a.attempt._tag === "Delivered"))}::boolean[]
            )`
        }
        const delivered = results.flatMap((r) => r.delivered)
        if (delivered.length > 0) yield* sql`DELETE FROM webhook_jobs WHERE id = ANY (${plain(delivered)}::bigint[])`
        const failed = results.flatMap((r) => r.failed === undefined ? [] : [r.failed])
        if (failed.length > 0) {
          yield* sql`
            UPDATE webhook_jobs j SET attempts = j.attempts + 1, last_error = f.error,
              state = CASE WHEN f.buried THEN 'dead' ELSE 'pending' END
            FROM unnest(${plain(failed.map((f) => f.job.id))}::bigint[], ${arrayLiteral(failed.map((f) => f.error.slice(0, 500)))}::text[],
                        ${plain(failed.map((f) => f.buried))}::boolean[]) AS f(id, error, buried)
            WHERE j.id = f.id`
        }
        const keys = sql`
          unnest(${plain(results.map((r) => r.webhookId))}::uuid[], ${plain(results.map((r) => r.orderKey))}::uuid[],
                 ${arrayLiteral(results.map((r) => r.runAt.toISOString()))}::timestamptz[]) AS k(webhook_id, order_key, run_at)`
        yield* sql`
          SELECT 1 FROM webhook_lines l, ${keys}
          WHERE l.webhook_id = k.webhook_id AND l.order_key = k.order_key
          ORDER BY l.webhook_id, l.order_key FOR UPDATE OF l`
        yield* sql`
          DELETE FROM webhook_lines l USING ${keys}
          WHERE l.webhook_id = k.webhook_id AND l.order_key = k.order_key AND l.locked_by = ${owner}
            AND NOT EXISTS (SELECT 1 FROM webhook_jobs j
                            WHERE j.webhook_id = l.webhook_id AND j.order_key = l.order_key AND j.state = 'pending')`
        yield* sql`
          UPDATE webhook_lines l SET run_at = k.run_at, locked_by = NULL, locked_until = NULL
          FROM ${keys}
          WHERE l.webhook_id = k.webhook_id AND l.order_key = k.order_key AND l.locked_by = ${owner}`
      }))

    const deliveries = (id: WebhookId, page: { readonly limit: number; readonly offset: number }) =>
      Effect.all({
        items: sql<Omit<DeliveryRow, "id" | "at"> & { readonly id: string | number; readonly at: Date | string }>`
          SELECT id, event_id, type, attempt, status, latency_ms, delivered, error, at FROM webhook_deliveries
          WHERE webhook_id = ${id} ORDER BY id DESC LIMIT ${page.limit} OFFSET ${page.offset}`,
        total: sql<{ readonly n: number | string }>`SELECT count(*) AS n FROM webhook_deliveries WHERE webhook_id = ${id}`
      }).pipe(Effect.map(({ items, total }) => ({
        items: items.map((r): DeliveryRow => ({ ...r, id: String(r.id), at: new Date(r.at) })),
        total: Number(total[0]?.n ?? 0)
      })))

    const orDie = <A, E>(name: string, effect: Effect.Effect<A, E>) =>
      effect.pipe(Effect.orDie, Effect.withSpan(`WebhooksRepo.${name}`))

    return WebhooksRepo.of({
      create: (w) =>
        orDie(
          "create",
          sql<WebhookRow>`
            INSERT INTO webhooks (url, events, description, secret, created_by)
            VALUES (${w.url}, ${plain(w.events)}::text[], ${w.description}, ${w.secret}, ${w.createdBy})
            RETURNING ${columns}`.pipe(Effect.map((rows) => webhook(rows[0]!)))
        ),
      list: orDie(
        "list",
        sql<WebhookRow>`SELECT ${columns} FROM webhooks ORDER BY created_at, id`.pipe(Effect.map((rows) => rows.map(webhook)))
      ),
      find: (id) =>
        orDie(
          "find",
          sql<WebhookRow>`SELECT ${columns} FROM webhooks WHERE id = ${id}`.pipe(
            Effect.map((rows) => Option.map(Option.fromNullable(rows[0]), webhook))
          )
        ),
      remove: (id) =>
        orDie(
          "remove",
          sql`DELETE FROM webhooks WHERE id = ${id} RETURNING id`.pipe(Effect.map((rows) => rows.length > 0))
        ),
      deliveries: (id, page) => orDie("deliveries", deliveries(id, page)),
      claim: (owner, limit, leaseMs, perLine) => orDie("claim", claim(owner, limit, leaseMs, perLine)),
      finish: (owner, results) => orDie("finish", finish(owner, results)),
      prune: (keep, before) =>
        orDie(
          "prune",
          Effect.zipRight(
            sql`DELETE FROM webhook_deliveries WHERE at < ${before.toISOString()}::timestamptz`,
            sql`
              DELETE FROM webhook_deliveries d USING (
                SELECT w.id AS webhook_id, (
                  SELECT x.id FROM webhook_deliveries x WHERE x.webhook_id = w.id
                  ORDER BY x.id DESC OFFSET ${keep} LIMIT 1
                ) AS cutoff
                FROM webhooks w
              ) c
              WHERE d.webhook_id = c.webhook_id AND d.id <= c.cutoff`
          ).pipe(Effect.asVoid)
        )
    })
  })
)
