import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import { Schema } from "effect"
import { message } from "../Errors.js"

export const WebhookId = Schema.UUID.pipe(
  Schema.brand("WebhookId"),
  Schema.annotations({ message: () => "must be a UUID" })
)
export type WebhookId = typeof WebhookId.Type

/** What a webhook can be told; the triggers of migration 0009 write them. */
export const EventTypes = [
  "message.created",
  "message.read",
  "conversation.created",
  "conversation.closed",
  "conversation.archived",
  "user.created",
  "user.deactivated"
] as const

export const EventType = Schema.Literal(...EventTypes).annotations({
  identifier: "WebhookEventType",
  message: () => `must be one of ${EventTypes.join(", ")}`
})
export type EventType = typeof EventType.Type

const WebhookUrl = Schema.String.pipe(
  Schema.filter((s) => {
    if (s.length > 2048) return false
    try {
      const url = new URL(s)
      return (url.protocol === "https:" || url.protocol === "http:") && url.hostname !== ""
    } catch {
      return false
    }
  }, { message: () => "must be an http(s) URL of at most 2048 characters" })
)

export class CreateWebhook extends Schema.Class<CreateWebhook>("CreateWebhook")(
  Schema.Struct({
    url: WebhookUrl,
    events: Schema.Array(EventType).pipe(
      Schema.filter((events) => events.length > 0 && new Set(events).size === events.length, {
        message: () => "events: at least one, each once"
      })
    ),
    description: Schema.optionalWith(
      Schema.String.pipe(Schema.filter((s) => s.length <= 500 && !s.includes("\0"), {
        message: () => "description: at most 500 characters, without NUL"
      })),
      { exact: true }
    )
  }).annotations({ parseOptions: { onExcessProperty: "error", errors: "all" } })
) {}

/** A webhook as admins see it: its secret is shown once, when it is created. */
export class Webhook extends Schema.Class<Webhook>("Webhook")({
  id: WebhookId,
  url: Schema.String,
  events: Schema.Array(EventType),
  description: Schema.NullOr(Schema.String),
  createdAt: Schema.DateTimeUtc
}) {}

export class CreatedWebhook extends Schema.Class<CreatedWebhook>("CreatedWebhook")({
  ...Webhook.fields,
  /** `whsec_` and a base64 key: verify deliveries with any Standard Webhooks library. Shown only here. */
  secret: Schema.String
}) {}

/** One attempt to deliver one event. */
export class Delivery extends Schema.Class<Delivery>("WebhookDelivery")({
  id: Schema.String,
  eventId: Schema.String,
  type: EventType,
  attempt: Schema.Int,
  /** The HTTP status answered, or null when none was (refused, timed out). */
  status: Schema.NullOr(Schema.Int),
  latencyMs: Schema.Int,
  delivered: Schema.Boolean,
  error: Schema.NullOr(Schema.String),
  at: Schema.DateTimeUtc
}) {}

export class WebhookNotFound extends Schema.TaggedError<WebhookNotFound>()(
  "WebhookNotFound",
  { id: Schema.String, message: message("No such webhook") },
  HttpApiSchema.annotations({ status: 404 })
) {}

export class PrivateWebhookUrl extends Schema.TaggedError<PrivateWebhookUrl>()(
  "PrivateWebhookUrl",
  { message: message("The webhook URL must name a public address (WEBHOOK_ALLOW_PRIVATE_URLS allows others)") },
  HttpApiSchema.annotations({ status: 400 })
) {}

/** How one attempt went, as the sender saw it. */
export type Attempt =
  | { readonly _tag: "Delivered"; readonly status: number; readonly latencyMs: number }
  | {
    readonly _tag: "Failed"
    readonly status: number | null
    readonly latencyMs: number
    readonly error: string
    /** Retry-After of a 429/503, in milliseconds. */
    readonly afterMs?: number
  }
