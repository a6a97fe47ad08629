import { SqlClient } from "@effect/sql"
import { Effect, Layer } from "effect"
import type { ConversationId, ConversationStatus } from "../../domain/chat/Model.js"
import type { DeadJob, NewDevice, PushContext, PushJob } from "../../domain/ports/PushRepo.js"
import { PushRepo } from "../../domain/ports/PushRepo.js"
import {
  defaultSettings,
  type Device,
  type DeviceId,
  NotificationSettings,
  type QuietHours
} from "../../domain/push/Model.js"
import type { UserId } from "../../domain/users/Model.js"

/** A `push_devices` row as the driver returns it (camelCased); `createdAt` is text when it came through json. */
type DeviceRow = Omit<Device, "createdAt"> & { readonly createdAt: Date | string }

const device = (row: DeviceRow): Device => ({
  id: row.id,
  userId: row.userId,
  platform: row.platform,
  token: row.token,
  p256dh: row.p256dh,
  auth: row.auth,
  appVersion: row.appVersion,
  locale: row.locale,
  createdAt: new Date(row.createdAt)
})

interface SettingsRow {
  readonly preview: boolean
  readonly quietStart: string | null
  readonly quietEnd: string | null
  readonly quietTimeZone: string | null
  readonly mutedConversations: ReadonlyArray<ConversationId> | null
}

const settingsOf = (row: SettingsRow | undefined): NotificationSettings =>
  row === undefined ? defaultSettings : new NotificationSettings({
    preview: row.preview,
    quietHours: row.quietStart === null || row.quietEnd === null || row.quietTimeZone === null
      ? null
      : { start: row.quietStart, end: row.quietEnd, timeZone: row.quietTimeZone } satisfies QuietHours,
    mutedConversations: row.mutedConversations ?? []
  }, { disableValidation: true })

interface JobRow {
  readonly id: string | number | bigint
  readonly conversationId: ConversationId
  readonly userId: UserId
  readonly seq: number
  readonly attempts: number
  readonly doneDevices: ReadonlyArray<DeviceId> | null
}

const job = (row: JobRow): PushJob => ({
  id: String(row.id),
  conversationId: row.conversationId,
  userId: row.userId,
  seq: row.seq,
  attempts: row.attempts,
  doneDevices: row.doneDevices ?? []
})

interface ContextRow extends SettingsRow {
  readonly status: ConversationStatus
  readonly recipientActive: boolean
  readonly lastSeq: number
  readonly unread: number
  readonly badge: number | string | null
  readonly senderName: string
  readonly lastPreview: string | null
  readonly lastSentAt: Date | null
  readonly hasSettings: boolean
  /** json_agg of the recipient's devices (text on drivers that do not parse json). */
  readonly devices: ReadonlyArray<DeviceRow> | string
}

export const layer = Layer.effect(
  PushRepo,
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient

    const listDevices = (userId: UserId) =>
      sql<DeviceRow>`SELECT * FROM push_devices WHERE user_id = ${userId} ORDER BY created_at, id`.pipe(
        Effect.map((rows) => rows.map(device))
      )

    const registerDevice = (userId: UserId, d: NewDevice, max: number) =>
      sql.withTransaction(Effect.gen(function*() {
        // xmax = 0: the row was inserted, not updated (a token registered before).
        const [row] = yield* sql<DeviceRow & { readonly inserted: boolean }>`
          INSERT INTO push_devices (user_id, platform, token, p256dh, auth, app_version, locale)
          VALUES (${userId}, ${d.platform}, ${d.token}, ${d.p256dh}, ${d.auth}, ${d.appVersion}, ${d.locale})
          ON CONFLICT (platform, token) DO UPDATE SET
            user_id = excluded.user_id, p256dh = excluded.p256dh, auth = excluded.auth,
            app_version = excluded.app_version, locale = excluded.locale, updated_at = now(),
            created_at = CASE WHEN push_devices.user_id = excluded.user_id THEN push_devices.created_at ELSE now() END
          RETURNING *, (xmax = 0) AS inserted`
        // The oldest beyond the limit go: a phone replaced or reset never says goodbye.
        yield* sql`
          DELETE FROM push_devices WHERE id IN (
            SELECT id FROM push_devices WHERE user_id = ${userId} AND id <> ${row!.id}
            ORDER BY updated_at DESC, id DESC OFFSET ${Math.max(0, max - 1)}
          )`
        return { device: device(row!), created: row!.inserted }
      }))

    const settings = (userId: UserId) =>
      sql<SettingsRow>`SELECT * FROM notification_settings WHERE user_id = ${userId}`.pipe(
        Effect.map((rows) => settingsOf(rows[0]))
      )

    const saveSettings = (userId: UserId, s: NotificationSettings) =>
      sql`
        INSERT INTO notification_settings (user_id, preview, quiet_start, quiet_end, quiet_time_zone, muted_conversations)
        VALUES (${userId}, ${s.preview}, ${s.quietHours?.start ?? null}, ${s.quietHours?.end ?? null},
                ${s.quietHours?.timeZone ?? null}, ${`{${s.mutedConversations.join(",")}}`}::uuid[])
        ON CONFLICT (user_id) DO UPDATE SET
          preview = excluded.preview, quiet_start = excluded.quiet_start, quiet_end = excluded.quiet_end,
          quiet_time_zone = excluded.quiet_time_zone, muted_conversations = excluded.muted_conversations,
          updated_at = now()`.pipe(Effect.as(s))

    const claim = (owner: string, limit: number, leaseMs: number) =>
      sql<JobRow>`
        UPDATE push_jobs SET locked_by = ${owner}, attempts = attempts + 1,
          locked_until = now() + make_interval(secs => ${leaseMs / 1000}::float8), updated_at = now()
        WHERE id IN (
          SELECT id FROM push_jobs
          WHERE state = 'pending' AND run_at <= now() AND (locked_until IS NULL OR locked_until < now())
          ORDER BY run_at
          LIMIT ${limit}
          FOR UPDATE SKIP LOCKED
        )
        RETURNING id, conversation_id, user_id, seq, attempts, done_devices`.pipe(Effect.map((rows) => rows.map(job)))

    const contexts = (jobs: ReadonlyArray<PushJob>) =>
      Effect.gen(function*() {
        const out = new Map<string, PushContext>()
        if (jobs.length === 0) return out
        const rows = yield* sql<ContextRow & { readonly jobId: string | number }>`
          SELECT j.id AS job_id, c.status, u.is_active AS recipient_active, c.last_seq,
            c.last_message_preview AS last_preview,
            CASE WHEN c.user_id = u.id THEN c.user_unread ELSE c.trainer_unread END AS unread,
            (SELECT coalesce(sum(CASE WHEN o.user_id = u.id THEN o.user_unread ELSE o.trainer_unread END), 0)
               FROM conversations o WHERE o.user_id = u.id OR o.trainer_id = u.id) AS badge,
            (SELECT s.first_name FROM users s
               WHERE s.id = CASE WHEN c.user_id = u.id THEN c.trainer_id ELSE c.user_id END) AS sender_name,
            (SELECT p.sent_at FROM push_sent p WHERE p.conversation_id = c.id AND p.user_id = u.id) AS last_sent_at,
            n.user_id IS NOT NULL AS has_settings, n.preview, n.quiet_start, n.quiet_end, n.quiet_time_zone,
            n.muted_conversations,
            (SELECT coalesce(json_agg(json_build_object(
                'id', d.id, 'userId', d.user_id, 'platform', d.platform, 'token', d.token, 'p256dh', d.p256dh,
                'auth', d.auth, 'appVersion', d.app_version, 'locale', d.locale, 'createdAt', d.created_at
              ) ORDER BY d.created_at, d.id), '[]')
             FROM push_devices d WHERE d.user_id = u.id) AS devices
          FROM unnest(${`{${jobs.map((j) => j.id).join(",")}}`}::bigint[], ${`{${jobs.map((j) => j.conversationId).join(",")}}`}::uuid[],
                      ${`{${jobs.map((j) => j.userId).join(",")}}`}::uuid[]) AS j(id, conversation_id, user_id)
          JOIN conversations c ON c.id = j.conversation_id
          JOIN users u ON u.id = j.user_id
          LEFT JOIN notification_settings n ON n.user_id = u.id`
        for (const row of rows) {
          const listed = typeof row.devices === "string" ? JSON.parse(row.devices) as ReadonlyArray<DeviceRow> : row.devices
          out.set(String(row.jobId), {
            status: row.status,
            recipientActive: row.recipientActive,
            lastSeq: row.lastSeq,
            unread: row.unread,
            badge: Number(row.badge ?? 0),
            senderName: row.senderName,
            lastPreview: row.lastPreview,
            settings: row.hasSettings ? settingsOf(row) : defaultSettings,
            lastSentAt: row.lastSentAt === null ? null : new Date(row.lastSentAt),
            devices: listed.map(device)
          })
        }
        return out
      })

    /**
     * One statement, so that the conversations' row locks are held only while it runs (taken in id order, as
     * appends take them): they order this against appends, which lock the row before they look for a pending
     * job. An append that found a job pending, and so wrote none, has committed before `c` is read (FOR UPDATE
     * waits for it and reads its last_seq); one that comes after finds no pending job and writes one.
     */
    const finish = (
      done: ReadonlyArray<{ readonly job: PushJob; readonly sent: boolean; readonly coveredSeq: number }>,
      timing: { readonly delayMs: number; readonly coalesceMs: number }
    ) =>
      done.length === 0 ? Effect.void : Effect.asVoid(sql`
        WITH input AS (
          SELECT * FROM unnest(
            ${`{${done.map((d) => d.job.id).join(",")}}`}::bigint[],
            ${`{${done.map((d) => d.job.conversationId).join(",")}}`}::uuid[],
            ${`{${done.map((d) => d.job.userId).join(",")}}`}::uuid[],
            ${`{${done.map((d) => d.sent).join(",")}}`}::boolean[],
            ${`{${done.map((d) => Math.min(d.coveredSeq, 2_147_483_647)).join(",")}}`}::int[]
          ) AS t(id, conversation_id, user_id, sent, covered)
        ), c AS MATERIALIZED (
          SELECT c.id, c.last_seq FROM conversations c
          WHERE c.id IN (SELECT conversation_id FROM input) ORDER BY c.id FOR UPDATE
        ), sent AS (
          INSERT INTO push_sent (conversation_id, user_id, sent_at)
          SELECT DISTINCT i.conversation_id, i.user_id, now() FROM input i WHERE i.sent
          ON CONFLICT (conversation_id, user_id) DO UPDATE SET sent_at = excluded.sent_at
          RETURNING conversation_id, user_id, sent_at
        ), later AS (
          UPDATE push_jobs j SET seq = i.covered + 1, attempts = 0, done_devices = '{}', locked_by = NULL,
            locked_until = NULL, last_error = NULL, updated_at = now(),
            run_at = greatest(
              now() + make_interval(secs => ${timing.delayMs / 1000}::float8),
              coalesce(s.sent_at, p.sent_at, now()) + make_interval(secs => ${timing.coalesceMs / 1000}::float8))
          FROM input i
          JOIN c ON c.id = i.conversation_id
          LEFT JOIN sent s ON s.conversation_id = i.conversation_id AND s.user_id = i.user_id
          LEFT JOIN push_sent p ON p.conversation_id = i.conversation_id AND p.user_id = i.user_id
          WHERE j.id = i.id AND c.last_seq > i.covered
          RETURNING j.id
        )
        DELETE FROM push_jobs j USING input i
        WHERE j.id = i.id AND NOT EXISTS (SELECT 1 FROM c WHERE c.id = i.conversation_id AND c.last_seq > i.covered)`)

    const dead = (limit: number, offset: number) =>
      Effect.all({
        items: sql<DeadJob & { readonly id: string | number }>`
          SELECT id, conversation_id, user_id, attempts, last_error, created_at, updated_at FROM push_jobs
          WHERE state = 'dead' ORDER BY updated_at DESC, id DESC LIMIT ${limit} OFFSET ${offset}`,
        total: sql<{ readonly n: number | string }>`SELECT count(*) AS n FROM push_jobs WHERE state = 'dead'`
      }).pipe(Effect.map(({ items, total }) => ({
        items: items.map((r) => ({ ...r, id: String(r.id), createdAt: new Date(r.createdAt), updatedAt: new Date(r.updatedAt) })),
        total: Number(total[0]?.n ?? 0)
      })))

    const orDie = <A, E>(name: string, effect: Effect.Effect<A, E>) =>
      effect.pipe(Effect.orDie, Effect.withSpan(`PushRepo.${name}`))

    return PushRepo.of({
      registerDevice: (userId, d, max) => orDie("registerDevice", registerDevice(userId, d, max)),
      listDevices: (userId) => orDie("listDevices", listDevices(userId)),
      removeDevice: (userId, id) =>
        orDie(
          "removeDevice",
          sql`DELETE FROM push_devices WHERE id = ${id} AND user_id = ${userId} RETURNING id`.pipe(
            Effect.map((rows) => rows.length > 0)
          )
        ),
      forgetDevice: (id) => orDie("forgetDevice", Effect.asVoid(sql`DELETE FROM push_devices WHERE id = ${id}`)),
      settings: (userId) => orDie("settings", settings(userId)),
      saveSettings: (userId, s) => orDie("saveSettings", saveSettings(userId, s)),
      claim: (owner, limit, leaseMs) => orDie("claim", claim(owner, limit, leaseMs)),
      contexts: (jobs) => orDie("contexts", contexts(jobs)),
      finish: (done, timing) => orDie("finish", finish(done, timing)),
      postpone: (j, runAt) =>
        orDie(
          "postpone",
          Effect.asVoid(sql`
            UPDATE push_jobs SET run_at = ${runAt.toISOString()}::timestamptz, attempts = greatest(attempts - 1, 0),
              locked_by = NULL, locked_until = NULL, updated_at = now()
            WHERE id = ${j.id}`)
        ),
      retry: (j, runAt, doneDevices, error) =>
        orDie(
          "retry",
          Effect.asVoid(sql`
            UPDATE push_jobs SET run_at = ${runAt.toISOString()}::timestamptz, locked_by = NULL, locked_until = NULL,
              done_devices = ${`{${doneDevices.join(",")}}`}::uuid[], last_error = ${error.slice(0, 500)},
              updated_at = now()
            WHERE id = ${j.id}`)
        ),
      bury: (j, error) =>
        orDie(
          "bury",
          Effect.asVoid(sql`
            UPDATE push_jobs SET state = 'dead', locked_by = NULL, locked_until = NULL, last_error = ${error.slice(0, 500)},
              updated_at = now()
            WHERE id = ${j.id}`)
        ),
      dead: (limit, offset) => orDie("dead", dead(limit, offset))
    })
  })
)
