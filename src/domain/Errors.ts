import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import { Schema } from "effect"
import type { ClientAnswer } from "./ClientErrors.js"

/**
 * Errors a client may see. Each carries its HTTP status and a default message;
 * `_tag` is the stable code clients switch on.
 */
export const message = (text: string) =>
  Schema.optionalWith(Schema.String, { default: () => text })

export class Unauthorized extends Schema.TaggedError<Unauthorized>()(
  "Unauthorized",
  { message: message("Missing, invalid or expired credentials") },
  HttpApiSchema.annotations({ status: 401, description: "Missing, invalid or expired token" })
) {}

export class Forbidden extends Schema.TaggedError<Forbidden>()(
  "Forbidden",
  { message: message("You are not allowed to do this") },
  HttpApiSchema.annotations({ status: 403, description: "The caller's role does not allow this" })
) {
  get answer(): ClientAnswer {
    return { code: "Forbidden", message: this.message }
  }
}

export class RateLimited extends Schema.TaggedError<RateLimited>()(
  "RateLimited",
  {
    message: message("Too many attempts, retry later"),
    retryAfterSeconds: Schema.Int
  },
  HttpApiSchema.annotations({ status: 429, description: "Too many attempts; see Retry-After" })
) {
  get answer(): ClientAnswer {
    return { code: "RateLimited", message: "Too many messages: slow down", retryAfterMs: this.retryAfterSeconds * 1000 }
  }
}

export class ServiceUnavailable extends Schema.TaggedError<ServiceUnavailable>()(
  "ServiceUnavailable",
  { message: message("The service is not ready") },
  HttpApiSchema.annotations({ status: 503 })
) {}
