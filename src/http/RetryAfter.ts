import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect } from "effect"
import type { RateLimited } from "../domain/Errors.js"
import { retryAfterOf } from "./Shared.js"

/** A 429 tells the client when to come back, in the header as well as the body. */
export const withRetryAfter = <A, E, R>(effect: Effect.Effect<A, E | RateLimited, R>) =>
  Effect.tapError(effect, (error) => {
    const retryAfter = retryAfterOf(error)
    return retryAfter === undefined
      ? Effect.void
      : HttpApp.appendPreResponseHandler((_, response) =>
        Effect.succeed(HttpServerResponse.setHeader(response, "retry-after", retryAfter))
      )
  })
