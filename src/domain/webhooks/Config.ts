import { Config, Duration } from "effect"

/** Webhook deliveries: how long each may take and how long an event is retried before it is given up. */
export const WebhookConfig = Config.all({
  /** URLs on loopback or private addresses accepted (tests, a receiver inside the network). */
  allowPrivateUrls: Config.boolean("WEBHOOK_ALLOW_PRIVATE_URLS").pipe(Config.withDefault(false)),
  timeout: Config.duration("WEBHOOK_TIMEOUT").pipe(Config.withDefault(Duration.seconds(10))),
  /** An event not delivered this long after it happened is given up (the deliveries log says so). */
  retryFor: Config.duration("WEBHOOK_RETRY_FOR").pipe(Config.withDefault(Duration.hours(24))),
  /** A claimed line whose instance died is claimed again after this. */
  lease: Config.duration("WEBHOOK_LEASE").pipe(Config.withDefault(Duration.seconds(60))),
  /** Attempts kept per webhook for `GET /admin/webhooks/:id/deliveries` (and none older than a week). */
  deliveriesKept: Config.integer("WEBHOOK_DELIVERIES_KEPT").pipe(Config.withDefault(1000)),
  /** How often the deliveries log is trimmed to that. */
  pruneInterval: Config.duration("WEBHOOK_PRUNE_INTERVAL").pipe(Config.withDefault(Duration.minutes(1))),
  /** How often an idle instance looks for due events. */
  poll: Config.duration("WEBHOOK_POLL_INTERVAL").pipe(Config.withDefault(Duration.millis(500)))
})
export type WebhookConfig = Config.Config.Success<typeof WebhookConfig>
