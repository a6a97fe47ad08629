import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as OpenApi from "@effect/platform/OpenApi"
import { Schema } from "effect"
import { Forbidden } from "../../domain/Errors.js"
import {
  CreatedWebhook,
  CreateWebhook,
  Delivery,
  PrivateWebhookUrl,
  Webhook,
  WebhookId,
  WebhookNotFound
} from "../../domain/webhooks/Model.js"
import { Page, pageParams, strict } from "../Schemas.js"
import { Authentication } from "../Security.js"

const id = HttpApiSchema.param("id", WebhookId)

export class WebhooksApi extends HttpApiGroup.make("webhooks")
  .add(
    HttpApiEndpoint.post("createWebhook", "/admin/webhooks")
      .setPayload(CreateWebhook)
      .addSuccess(CreatedWebhook, { status: 201 })
      .addError(PrivateWebhookUrl)
      .addError(Forbidden)
      .annotate(
        OpenApi.Summary,
        "Register a webhook (admin). The answer carries its signing secret, shown this once: deliveries are signed as " +
          "Standard Webhooks sign them (webhook-id, webhook-timestamp, webhook-signature: v1,<base64 HMAC-SHA256 of " +
          "\"id.timestamp.body\">). Events are posted as JSON { id, type, createdAt, data }, at least once, in order per " +
          "conversation (and per user), retried with exponential backoff for 24 hours; redirects are not followed"
      )
  )
  .add(
    HttpApiEndpoint.get("listWebhooks", "/admin/webhooks")
      .addSuccess(Schema.Array(Webhook))
      .addError(Forbidden)
      .annotate(OpenApi.Summary, "The registered webhooks, without their secrets (admin)")
  )
  .add(
    HttpApiEndpoint.get("getWebhook")`/admin/webhooks/${id}`
      .addSuccess(Webhook)
      .addError(WebhookNotFound)
      .addError(Forbidden)
      .annotate(OpenApi.Summary, "One webhook, without its secret (admin)")
  )
  .add(
    HttpApiEndpoint.del("deleteWebhook")`/admin/webhooks/${id}`
      .addSuccess(HttpApiSchema.NoContent)
      .addError(WebhookNotFound)
      .addError(Forbidden)
      .annotate(OpenApi.Summary, "Remove a webhook with its pending events and its deliveries log (admin)")
  )
  .add(
    HttpApiEndpoint.get("webhookDeliveries")`/admin/webhooks/${id}/deliveries`
      .setUrlParams(Schema.Struct(pageParams).annotations(strict))
      .addSuccess(Page("WebhookDeliveryPage", Delivery))
      .addError(WebhookNotFound)
      .addError(Forbidden)
      .annotate(
        OpenApi.Summary,
        "Recent attempts to deliver to this webhook, newest first: status, latency, error (the latest WEBHOOK_DELIVERIES_KEPT, at most 7 days old; admin)"
      )
  )
  .middleware(Authentication)
  .annotate(OpenApi.Title, "Webhooks")
{}
