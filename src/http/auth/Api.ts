import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as OpenApi from "@effect/platform/OpenApi"
import { Schema } from "effect"
import { RateLimited } from "../../domain/Errors.js"
import { AccountInactive, EmailTaken, InvalidCredentials } from "../../domain/users/Errors.js"
import { Email, Name, Password, UserJson } from "../../domain/users/Model.js"
import { StrictStruct } from "../Schemas.js"


export class RegisterPayload extends Schema.Class<RegisterPayload>("RegisterPayload")(StrictStruct({
  email: Email,
  password: Password,
  firstName: Name,
  lastName: Name
})) {}

export class LoginPayload extends Schema.Class<LoginPayload>("LoginPayload")(StrictStruct({
  email: Email,
  password: Schema.Redacted(Schema.String.pipe(Schema.maxLength(256)))
})) {}

export class SessionResponse extends Schema.Class<SessionResponse>("Session")({
  accessToken: Schema.String,
  tokenType: Schema.Literal("Bearer"),
  expiresIn: Schema.Int.annotations({ description: "Seconds until accessToken expires" }),
  user: UserJson
}) {}

export class AuthApi extends HttpApiGroup.make("auth")
  .add(
    HttpApiEndpoint.post("register", "/register")
      .setPayload(RegisterPayload)
      .addSuccess(SessionResponse, { status: 201 })
      .addError(EmailTaken)
      .addError(RateLimited)
      .annotate(OpenApi.Summary, "Create an account (role user) and sign in")
  )
  .add(
    HttpApiEndpoint.post("login", "/login")
      .setPayload(LoginPayload)
      .addSuccess(SessionResponse)
      .addError(InvalidCredentials)
      .addError(AccountInactive)
      .addError(RateLimited)
      .annotate(OpenApi.Summary, "Sign in with email and password")
  )
  .prefix("/auth")
  .annotate(OpenApi.Title, "Auth")
{}
