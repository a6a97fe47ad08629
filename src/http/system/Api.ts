import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as OpenApi from "@effect/platform/OpenApi"
import { Schema } from "effect"
import { ServiceUnavailable } from "../../domain/Errors.js"

export const Health = Schema.Struct({ status: Schema.Literal("ok") })

export const Readiness = Schema.Struct({
  /** `degraded`: Redis is away; this instance serves its own clients, cross-instance fan-out waits for Redis. */
  status: Schema.Literal("ready", "degraded"),
  database: Schema.Literal("postgres", "pglite"),
  /** What instances share through: Redis (up or down) or this process's memory. */
  shared: Schema.Literal("memory", "redis-up", "redis-down"),
  /** The push providers that are configured (the others are off). */
  push: Schema.Array(Schema.Literal("fcm", "apns", "webpush"))
})

export class SystemApi extends HttpApiGroup.make("system")
  .add(
    HttpApiEndpoint.get("health", "/health")
      .addSuccess(Health)
      .annotate(OpenApi.Summary, "Liveness: the process answers")
  )
  .add(
    HttpApiEndpoint.get("ready", "/ready")
      .addSuccess(Readiness)
      .addError(ServiceUnavailable)
      .annotate(OpenApi.Summary, "Readiness: the database answers and migrations are done; degraded while Redis is away")
  )
  .annotate(OpenApi.Title, "System")
{}
