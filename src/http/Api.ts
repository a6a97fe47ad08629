import * as HttpApi from "@effect/platform/HttpApi"
import * as OpenApi from "@effect/platform/OpenApi"
import { AttachmentsApi } from "./attachments/Api.js"
import { AuthApi, SessionsApi } from "./auth/Api.js"
import { tidyOpenApi } from "./OpenApiTidy.js"
import { ChatApi, ModerationApi } from "./chat/Api.js"
import { PushApi } from "./push/Api.js"
import { SystemApi } from "./system/Api.js"
import { UsersApi } from "./users/Api.js"
import { WebhooksApi } from "./webhooks/Api.js"

/** The whole REST contract: handlers, the OpenAPI document and typed clients all derive from it. */
export class Api extends HttpApi.make("trainer-chat")
  .add(SystemApi)
  .add(AuthApi)
  .add(SessionsApi)
  .add(UsersApi)
  .add(ChatApi)
  .add(AttachmentsApi)
  .add(ModerationApi)
  .add(PushApi)
  .add(WebhooksApi)
  .annotate(OpenApi.Title, "Trainer Chat")
  .annotate(OpenApi.Version, "0.1.0")
  .annotate(OpenApi.Description, "Real-time chat between users and their trainers, with admin moderation.")
  // Paths are relative to wherever the API is served (behind a proxy, on any host).
  .annotate(OpenApi.Servers, [{ url: "/", description: "This server" }])
  .annotate(OpenApi.Transform, tidyOpenApi)
{}
