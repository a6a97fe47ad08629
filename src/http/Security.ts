import { HttpApiMiddleware, HttpApiSecurity, HttpServerRequest, OpenApi } from "@effect/platform"
import { Context, Effect, Layer, Redacted } from "effect"
import { Unauthorized } from "../domain/Errors.js"
import { Auth } from "../domain/users/Auth.js"
import type { User } from "../domain/users/Model.js"

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
      // The platform cuts the first 7 characters off the header whatever they say: check the scheme here.
      bearer: (token) =>
        Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
          const value = Redacted.value(token).trim()
          return !/^bearer\s/i.test(request.headers.authorization ?? "") || value === ""
            ? Effect.fail(new Unauthorized({ message: "Missing bearer token" }))
            : auth.authenticate(value)
        })
    }))
)
