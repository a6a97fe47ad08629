import { Context } from "effect"

/** Where a send came in. */
export type Door = "rest" | "websocket" | "socketio"
/** The two kinds of socket. */
export type Transport = "websocket" | "socketio"
/** Why a REST request was refused with 413, 429 or 503. */
export type RefusalReason = "body_too_large" | "rate_limited" | "in_flight_limit" | "shutting_down" | "unavailable"
export type PushOutcome = "sent" | "skipped" | "retried" | "dead"
export type WebhookOutcome = "delivered" | "retried" | "given_up"

/**
 * Gauges read when metrics are scraped: each reader answers its value, or its value by label (the label's
 * values are bounded: transports, states).
 */
export interface Gauges {
  readonly connections: () => Readonly<Record<Transport, number>>
  readonly httpInFlight: () => number
  readonly dbPool: () => { readonly in_use: number; readonly idle: number; readonly waiting: number }
  readonly migrationsApplied: () => number
  readonly presenceLeases: () => number
  readonly redisConnected: () => { readonly commands: boolean; readonly subscriber: boolean }
  readonly ready: () => Promise<boolean>
}

/**
 * What the product counts and times, for operators (Prometheus at `METRICS_PORT`). Every recorder is
 * synchronous and cheap (they are on the message path), and every label value it takes is bounded: an
 * enum, a route template or a code, never an id or anything a client wrote.
 */
export interface MetricsShape {
  readonly enabled: boolean
  // ---- HTTP (both REST doors)
  readonly httpRequest: (method: string, path: string, status: number, seconds: number) => void
  readonly httpRefused: (status: 413 | 429 | 503, reason: RefusalReason) => void
  // ---- connections
  readonly connectionOpened: (transport: Transport) => void
  readonly connectionClosed: (transport: Transport, code: number) => void
  readonly connectionRefused: (transport: Transport, code: string) => void
  /** A client frame, by its event (a known client event, or "invalid"). */
  readonly frameReceived: (transport: Transport, event: string) => void
  readonly errorFrame: (code: string) => void
  readonly slowConsumer: (transport: Transport) => void
  // ---- the message path
  /**
   * A send acked with its message: `seconds` from its arrival to its ack; `created` false for a retry of a
   * stored one (timed, not counted again).
   */
  readonly messageSent: (door: Door, seconds: number, created: boolean) => void
  /** One group-commit append statement: how many messages, how long. */
  readonly appendBatch: (size: number, seconds: number) => void
  /** Message frames written to this instance's sockets, `lagSeconds` after the message's commit. */
  readonly delivered: (kind: "room" | "notification", frames: number, lagSeconds: number) => void
  // ---- the bus and Redis
  readonly busPublished: (event: string) => void
  /** An event from another instance; `lagSeconds` since it was published, when known. */
  readonly busReceived: (event: string, lagSeconds: number | undefined) => void
  readonly redisCommandFailed: () => void
  // ---- Postgres, limits, jobs
  readonly queryFailed: () => void
  /** A rate limit refused a hit; buckets are the code's own names ("send:user", "ws:typing"). */
  readonly rateLimited: (bucket: string) => void
  readonly pushJob: (outcome: PushOutcome, count?: number) => void
  readonly webhookDelivery: (outcome: WebhookOutcome) => void
  /** Gauges read at each scrape; a later reader of the same gauge replaces the earlier one. */
  readonly gauges: (readers: Partial<Gauges>) => void
}

const nothing = () => {}

/** Recorders that do nothing: what the product uses when metrics are off (`METRICS_PORT=0`) or not provided. */
export const noMetrics: MetricsShape = {
  enabled: false,
  httpRequest: nothing,
  httpRefused: nothing,
  connectionOpened: nothing,
  connectionClosed: nothing,
  connectionRefused: nothing,
  frameReceived: nothing,
  errorFrame: nothing,
  slowConsumer: nothing,
  messageSent: nothing,
  appendBatch: nothing,
  delivered: nothing,
  busPublished: nothing,
  busReceived: nothing,
  redisCommandFailed: nothing,
  queryFailed: nothing,
  rateLimited: nothing,
  pushJob: nothing,
  webhookDelivery: nothing,
  gauges: nothing
}

/** The product's metrics; without a layer of its own, recorders that do nothing. */
export class Metrics extends Context.Reference<Metrics>()("Ports/Metrics", { defaultValue: () => noMetrics }) {}
