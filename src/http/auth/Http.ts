import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import { Effect } from "effect"
import { Auth } from "../../domain/users/Auth.js"
import { Api } from "../Api.js"
import { clientIp, TrustProxy } from "../ClientIp.js"
import { withRetryAfter } from "../RetryAfter.js"
import { CurrentUser } from "../Security.js"
import { bearerOf } from "../Shared.js"

export const AuthLive = HttpApiBuilder.group(Api, "auth", (handlers) =>
  Effect.gen(function*() {
    const auth = yield* Auth
    const trustProxy = yield* TrustProxy

    const ipOf = (request: HttpServerRequest.HttpServerRequest) => clientIp(request, trustProxy)

    return handlers
      .handle("register", ({ payload, request }) =>
        auth.register(payload, { ip: ipOf(request) }, payload.deviceName).pipe(withRetryAfter))
      .handle("login", ({ payload, request }) =>
        auth.login(payload, { ip: ipOf(request) }, payload.deviceName).pipe(withRetryAfter))
      .handle("refresh", ({ payload }) => auth.refresh(payload.refreshToken))
      .handle("requestPasswordReset", ({ payload, request }) =>
        auth.requestReset(payload.email, { ip: ipOf(request) }).pipe(withRetryAfter))
      .handle("confirmPasswordReset", ({ payload }) => auth.confirmReset(payload.token, payload.newPassword))
  }))

export const SessionsLive = HttpApiBuilder.group(Api, "sessions", (handlers) =>
  Effect.gen(function*() {
    const auth = yield* Auth
    // The session of the request's token (the middleware verified it: cached, not checked twice).
    const current = Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
      Effect.map(auth.session(bearerOf(request.headers.authorization)), (s) => s.sessionId))

    return handlers
      .handle("logout", () => Effect.flatMap(Effect.zip(CurrentUser, current), ([user, sid]) => auth.logout(user, sid)))
      .handle("wsTicket", () =>
        Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
          auth.issueTicket(bearerOf(request.headers.authorization))))
      .handle("sendPasswordReset", ({ path }) => Effect.flatMap(CurrentUser, (user) => auth.sendReset(user, path.userId)))
      .handle("logoutAll", () => Effect.flatMap(CurrentUser, (user) => auth.logoutAll(user)))
      .handle("listSessions", () =>
        Effect.flatMap(Effect.zip(CurrentUser, current), ([user, sid]) => auth.listSessions(user, sid)))
      .handle("revokeSession", ({ path }) => Effect.flatMap(CurrentUser, (user) => auth.revokeSession(user, path.id)))
  }))
