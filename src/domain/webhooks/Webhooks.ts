import { DateTime, Duration, Effect, Option } from "effect"
import { Metrics } from "../ports/Metrics.js"
import { randomUUID } from "node:crypto"
import { AuditLog } from "../ports/AuditLog.js"
import {
  type AttemptRecord,
  type ClaimedLine,
  type LineResult,
  type StoredWebhook,
  WebhookSender,
  WebhooksRepo
} from "../ports/WebhooksRepo.js"
import { isPrivateHost } from "../push/Endpoints.js"
import { sweepForever } from "../Sweeps.js"
import type { User } from "../users/Model.js"
import { WebhookConfig } from "./Config.js"
import {
  type CreateWebhook,
  CreatedWebhook,
  Delivery,
  PrivateWebhookUrl,
  Webhook,
  type WebhookId,
  WebhookNotFound
} from "./Model.js"
import { newSecret, signedHeaders } from "./Signing.js"

/** How long to wait after failed attempt `n` (1 s, 2 s, 4 s, … at most an hour), with a little jitter. */
export const backoffMs = (attempts: number) =>
  Math.min(3_600_000, 1000 * 2 ** Math.max(0, attempts - 1)) * (0.9 + Math.random() * 0.2)

const view = (w: StoredWebhook) =>
  new Webhook({
    id: w.id,
    url: w.url,
    events: w.events,
    description: w.description,
    createdAt: DateTime.unsafeFromDate(w.createdAt)
  })

/** The body of a delivery: `{ id, type, createdAt, data }`, the data as the database wrote it. */
export const bodyOf = (job: { readonly eventId: string; readonly type: string; readonly createdAt: Date; readonly data: string }) =>
  `{"id":"${job.eventId}","type":"${job.type}","createdAt":"${job.createdAt.toISOString()}","data":${job.data}}`

/**
 * Webhooks for the customer's own backend: admins register endpoints; the events the database wrote in the
 * transactions that caused them are posted, signed as Standard Webhooks sign, at least once, in order per
 * conversation (and per user), retried with backoff for `WEBHOOK_RETRY_FOR`.
 */
export class Webhooks extends Effect.Service<Webhooks>()("Webhooks/Webhooks", {
  scoped: Effect.gen(function*() {
    const repo = yield* WebhooksRepo
    const metrics = yield* Metrics
    const sender = yield* WebhookSender
    const audit = yield* AuditLog
    const config = yield* WebhookConfig
    const owner = randomUUID()
    const leaseMs = Duration.toMillis(config.lease)
    const retryForMs = Duration.toMillis(config.retryFor)

    const create = Effect.fn("Webhooks.create")(function*(actor: User, payload: CreateWebhook) {
      if (!config.allowPrivateUrls && isPrivateHost(new URL(payload.url).hostname)) {
        return yield* Effect.fail(new PrivateWebhookUrl())
      }
      const stored = yield* repo.create({
        url: payload.url,
        events: payload.events,
        description: payload.description ?? null,
        secret: newSecret(),
        createdBy: actor.id
      })
      yield* audit.record({
        actorId: actor.id,
        action: "webhook.create",
        targetId: stored.id,
        details: { url: stored.url, events: stored.events }
      })
      return new CreatedWebhook({ ...view(stored), secret: stored.secret })
    })

    const get = Effect.fn("Webhooks.get")(function*(id: WebhookId) {
      const found = yield* repo.find(id)
      if (Option.isNone(found)) return yield* Effect.fail(new WebhookNotFound({ id }))
      return view(found.value)
    })

    const remove = Effect.fn("Webhooks.remove")(function*(actor: User, id: WebhookId) {
      if (!(yield* repo.remove(id))) return yield* Effect.fail(new WebhookNotFound({ id }))
      yield* audit.record({ actorId: actor.id, action: "webhook.delete", targetId: id, details: null })
    })

    const deliveries = Effect.fn("Webhooks.deliveries")(function*(
      id: WebhookId,
      page: { readonly limit: number; readonly offset: number }
    ) {
      yield* get(id)
      const { items, total } = yield* repo.deliveries(id, page)
      return {
        items: items.map((d) => new Delivery({ ...d, at: DateTime.unsafeFromDate(d.at) })),
        total,
        limit: page.limit,
        offset: page.offset
      }
    })

    /**
     * One claimed line, in order: each event is posted once it is its turn; the first that fails stops the line
     * until its backoff is over (or, past `retryFor`, is given up and the line goes on). A line stops early
     * when half its lease is spent, so that no other instance claims it while this one still posts.
     */
    const deliver = (line: ClaimedLine) =>
      Effect.gen(function*() {
        const started = Date.now()
        const attempts: Array<AttemptRecord> = []
        const delivered: Array<string> = []
        const result = (failed: LineResult["failed"], runAt: Date): LineResult => ({
          webhookId: line.webhook.id,
          orderKey: line.orderKey,
          attempts,
          delivered,
          failed,
          runAt
        })
        for (const job of line.jobs) {
          if (Date.now() - started > leaseMs / 2) break
          const body = bodyOf(job)
          const headers = {
            "content-type": "application/json",
            "user-agent": "trainer-chat-webhooks/1",
            ...signedHeaders(line.webhook.secret, job.eventId, Math.floor(Date.now() / 1000), body)
          }
          const attempt = yield* sender.send(line.webhook.url, headers, body)
          attempts.push({ job, attempt })
          if (attempt._tag === "Delivered") {
            metrics.webhookDelivery("delivered")
            delivered.push(job.id)
            continue
          }
          const buried = Date.now() - job.createdAt.getTime() >= retryForMs
          metrics.webhookDelivery(buried ? "given_up" : "retried")
          if (buried) {
            yield* Effect.logWarning("Webhook event given up").pipe(
              Effect.annotateLogs({ webhookId: line.webhook.id, eventId: job.eventId, attempts: job.attempts + 1, error: attempt.error })
            )
            return result({ job, error: attempt.error, buried }, new Date())
          }
          const wait = Math.min(3_600_000, Math.max(backoffMs(job.attempts + 1), attempt.afterMs ?? 0))
          return result({ job, error: attempt.error, buried }, new Date(Date.now() + wait))
        }
        return result(undefined, new Date())
      }).pipe(Effect.annotateLogs({ webhookId: line.webhook.id }))

    const batch = 32
    const perLine = 20

    // Results of a sweep whose finish failed (the database went away after the posts): finished first next time,
    // while their lines are still this instance's, instead of waiting out the lease and posting them again.
    let unfinished: ReadonlyArray<LineResult> = []

    /** Claims up to 32 due lines, delivers them side by side, and finishes them in one transaction. */
    const sweep = Effect.gen(function*() {
      if (unfinished.length > 0) {
        yield* repo.finish(owner, unfinished)
        unfinished = []
      }
      const lines = yield* repo.claim(owner, batch, leaseMs, perLine)
      if (lines.length === 0) return false
      const results = yield* Effect.forEach(lines, deliver, { concurrency: 16 })
      unfinished = results
      yield* repo.finish(owner, results)
      unfinished = []
      // More may be waiting: lines beyond this batch, or beyond the events taken of a line.
      return lines.length === batch || results.some((r) => r.failed === undefined && r.delivered.length === perLine)
    }).pipe(Effect.withSpan("Webhooks.sweep"))

    // The deliveries log is trimmed every prune interval, between sweeps.
    const pruneMs = Duration.toMillis(config.pruneInterval)
    let pruned = 0
    const prune = Effect.suspend(() => {
      if (Date.now() - pruned < pruneMs) return Effect.void
      pruned = Date.now()
      return Effect.ignoreLogged(repo.prune(Math.max(0, config.deliveriesKept), new Date(Date.now() - 7 * 86_400_000)))
    })
    yield* sweepForever({ name: "Webhook", sweep, poll: config.poll, idle: prune }).pipe(
      Effect.interruptible,
      Effect.forkScoped
    )

    return {
      create,
      list: Effect.map(repo.list, (all) => all.map(view)),
      get,
      remove,
      deliveries,
      /** Delivers what is due now (tests, and an instance that wants to drain before it stops). */
      sweep
    } as const
  })
}) {}
