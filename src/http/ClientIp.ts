import type { HttpServerRequest } from "@effect/platform"
import { Config, Context, Option } from "effect"

/** Behind a load balancer, the client is the first address of `X-Forwarded-For`; trust it only when told to. */
export const TrustProxy = Config.boolean("TRUST_PROXY").pipe(Config.withDefault(false))

/**
 * The socket peer's address, for listeners whose requests do not carry it
 * (the uWebSockets.js gateway hands requests over as web `Request`s).
 */
export class PeerAddress extends Context.Tag("Http/PeerAddress")<PeerAddress, string>() {}

export const clientIp = (
  request: HttpServerRequest.HttpServerRequest,
  trustProxy: boolean,
  peer: Option.Option<string> = Option.none()
): Option.Option<string> => {
  if (trustProxy) {
    const forwarded = request.headers["x-forwarded-for"]?.split(",")[0]?.trim()
    if (forwarded) return Option.some(forwarded)
  }
  return Option.orElse(request.remoteAddress, () => peer)
}
