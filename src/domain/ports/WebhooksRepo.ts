import { Context, type Effect, type Option } from "effect"
import type { UserId } from "../users/Model.js"
import type { Attempt, EventType, WebhookId } from "../webhooks/Model.js"

/** A webhook as stored, its secret included (never shown after creation). */
export interface StoredWebhook {
  readonly id: WebhookId
  readonly url: string
  readonly events: ReadonlyArray<EventType>
  readonly description: string | null
  readonly secret: string
  readonly createdAt: Date
}

/** One event to deliver to one webhook. */
export interface WebhookJob {
  readonly id: string
  readonly eventId: string
  readonly type: EventType
  /** The event's data as JSON text, as it was written in the transaction that caused it. */
  readonly data: string
  readonly createdAt: Date
  /** Failed attempts so far. */
  readonly attempts: number
}

/** A claimed line: the oldest pending events of one conversation (or user) for one webhook, in order. */
export interface ClaimedLine {
  readonly webhook: StoredWebhook
  readonly orderKey: string
  readonly jobs: ReadonlyArray<WebhookJob>
}

/** An attempt as the deliveries log keeps it. */
export interface AttemptRecord {
  readonly job: WebhookJob
  readonly attempt: Attempt
}

/** What became of a claimed line: attempts made, the jobs delivered, the one that failed, and when to go on. */
export interface LineResult {
  readonly webhookId: WebhookId
  readonly orderKey: string
  readonly attempts: ReadonlyArray<AttemptRecord>
  readonly delivered: ReadonlyArray<string>
  /** The job that failed (it heads the line again), and whether it is given up (then the line goes on). */
  readonly failed: { readonly job: WebhookJob; readonly error: string; readonly buried: boolean } | undefined
  readonly runAt: Date
}

export interface DeliveryRow {
  readonly id: string
  readonly eventId: string
  readonly type: EventType
  readonly attempt: number
  readonly status: number | null
  readonly latencyMs: number
  readonly delivered: boolean
  readonly error: string | null
  readonly at: Date
}

/**
 * Webhooks and their outbox. Events are written by the database itself (triggers of migration 0009) in the
 * transaction that caused them; instances claim lines of them with a lease, so each line is delivered by one
 * instance at a time, in order, and a line whose instance died is claimed again once its lease runs out.
 */
export class WebhooksRepo extends Context.Tag("Ports/WebhooksRepo")<WebhooksRepo, {
  readonly create: (webhook: {
    readonly url: string
    readonly events: ReadonlyArray<EventType>
    readonly description: string | null
    readonly secret: string
    readonly createdBy: UserId
  }) => Effect.Effect<StoredWebhook>
  readonly list: Effect.Effect<ReadonlyArray<StoredWebhook>>
  readonly find: (id: WebhookId) => Effect.Effect<Option.Option<StoredWebhook>>
  /** Removes a webhook with its pending events and its log; false when there was none. */
  readonly remove: (id: WebhookId) => Effect.Effect<boolean>
  readonly deliveries: (
    id: WebhookId,
    page: { readonly limit: number; readonly offset: number }
  ) => Effect.Effect<{ readonly items: ReadonlyArray<DeliveryRow>; readonly total: number }>

  /** Claims up to `limit` due lines for `leaseMs`, with up to `perLine` of each one's oldest events. */
  readonly claim: (
    owner: string,
    limit: number,
    leaseMs: number,
    perLine: number
  ) => Effect.Effect<ReadonlyArray<ClaimedLine>>
  /** Logs the attempts, removes what was delivered, and releases the lines (removing those left empty). */
  readonly finish: (owner: string, results: ReadonlyArray<LineResult>) => Effect.Effect<void>
  /** Forgets attempts older than `before`, and all but each webhook's latest `keep`. */
  readonly prune: (keep: number, before: Date) => Effect.Effect<void>
}>() {}

/** Posts one signed event. */
export class WebhookSender extends Context.Tag("Ports/WebhookSender")<WebhookSender, {
  readonly send: (
    url: string,
    headers: Readonly<Record<string, string>>,
    body: string
  ) => Effect.Effect<Attempt>
}>() {}
