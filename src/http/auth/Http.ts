import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import { Effect } from "effect"
import { Auth } from "../../domain/users/Auth.js"
import { Api } from "../Api.js"
import { clientIp, TrustProxy } from "../ClientIp.js"
import { withRetryAfter } from "../RetryAfter.js"

export const AuthLive = HttpApiBuilder.group(Api, "auth", (handlers) =>
  Effect.gen(function*() {
    const auth = yield* Auth
    const trustProxy = yield* TrustProxy

    const ipOf = (request: HttpServerRequest.HttpServerRequest) => clientIp(request, trustProxy)

    return handlers
      .handle("register", ({ payload, request }) => auth.register(payload, { ip: ipOf(request) }).pipe(withRetryAfter))
      .handle("login", ({ payload, request }) => auth.login(payload, { ip: ipOf(request) }).pipe(withRetryAfter))
  }))
