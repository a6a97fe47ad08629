import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { Effect } from "effect"
import { Forbidden } from "../../domain/Errors.js"
import { isAdmin } from "../../domain/users/Policy.js"
import { Webhooks } from "../../domain/webhooks/Webhooks.js"
import { Api } from "../Api.js"
import { CurrentUser } from "../Security.js"

/** Every webhook endpoint is for admins. */
const admin = Effect.flatMap(CurrentUser, (actor) => isAdmin(actor) ? Effect.succeed(actor) : Effect.fail(new Forbidden()))

export const WebhooksLive = HttpApiBuilder.group(Api, "webhooks", (handlers) =>
  Effect.gen(function*() {
    const webhooks = yield* Webhooks

    return handlers
      .handle("createWebhook", ({ payload }) => Effect.flatMap(admin, (actor) => webhooks.create(actor, payload)))
      .handle("listWebhooks", () => Effect.zipRight(admin, webhooks.list))
      .handle("getWebhook", ({ path }) => Effect.zipRight(admin, webhooks.get(path.id)))
      .handle("deleteWebhook", ({ path }) => Effect.flatMap(admin, (actor) => webhooks.remove(actor, path.id)))
      .handle("webhookDeliveries", ({ path, urlParams }) =>
        Effect.zipRight(admin, webhooks.deliveries(path.id, urlParams)))
  }))
