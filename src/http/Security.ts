import * as HttpApiMiddleware from "@effect/platform/HttpApiMiddleware"
import * as HttpApiSecurity from "@effect/platform/HttpApiSecurity"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as OpenApi from "@effect/platform/OpenApi"
import { Context, Effect, Layer } from "effect"
import { Unauthorized } from "../domain/Errors.js"
import { Auth } from "../domain/users/Auth.js"
import type { User } from "../domain/users/Model.js"
import { bearerOf, missingBearer } from "./Shared.js"

/** The signed-in user of the request being handled. */
export class CurrentUser extends Context.Tag("Http/CurrentUser")<CurrentUser, User>() {}

export class Authentication extends HttpApiMiddleware.Tag<Authentication>()("Http/Authentication", {
  failure: Unauthorized,
  provides: CurrentUser,
  security: {
    bearer: HttpApiSecurity.bearer.pipe(
      HttpApiSecurity.annotate(OpenApi.Description, "The accessToken from POST /auth/login or /auth/register")
    )
  }
}) {}

export const AuthenticationLive = Layer.effect(
  Authentication,
  Effect.map(Auth, (auth) =>
    Authentication.of({
      // The platform cuts the first 7 characters off the header whatever they say: the scheme is checked again.
      bearer: () =>
        Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
          const token = bearerOf(request.headers.authorization)
          return token === "" ? Effect.fail(missingBearer) : auth.authenticate(token)
        })
    }))
)
