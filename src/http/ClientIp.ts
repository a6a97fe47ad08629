import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import { Config, Option } from "effect"

/** Behind a load balancer, the client is the first address of `X-Forwarded-For`; trust it only when told to. */
export const TrustProxy = Config.boolean("TRUST_PROXY").pipe(Config.withDefault(false))

export const clientIp = (
  request: HttpServerRequest.HttpServerRequest,
  trustProxy: boolean
): Option.Option<string> => {
  if (trustProxy) {
    const forwarded = request.headers["x-forwarded-for"]?.split(",")[0]?.trim()
    if (forwarded) return Option.some(forwarded)
  }
  return request.remoteAddress
}
