import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as OpenApi from "@effect/platform/OpenApi"
import { Schema } from "effect"
import { Forbidden, RateLimited, ServiceUnavailable, Unauthorized } from "../../domain/Errors.js"
import {
  AccountInactive,
  EmailTaken,
  InvalidCredentials,
  InvalidResetToken,
  UserNotFound
} from "../../domain/users/Errors.js"
import { Email, Name, Password, UserId, UserJson } from "../../domain/users/Model.js"
import { SessionId, SessionJson, SessionNotFound } from "../../domain/users/Sessions.js"
import { optional, StrictStruct } from "../Schemas.js"
import { Authentication } from "../Security.js"

const DeviceName = Schema.String.pipe(
  Schema.filter((s) => s.length >= 1 && s.length <= 100 && !s.includes("\0"), {
    message: () => "deviceName: 1 to 100 characters, without NUL"
  })
)


export class RegisterPayload extends Schema.Class<RegisterPayload>("RegisterPayload")(StrictStruct({
  email: Email,
  password: Password,
  firstName: Name,
  lastName: Name,
  /** Shown in the session list ("Pixel 8", "Firefox on Linux"). */
  deviceName: optional(DeviceName)
})) {}

export class LoginPayload extends Schema.Class<LoginPayload>("LoginPayload")(StrictStruct({
  email: Email,
  password: Schema.Redacted(Schema.String.pipe(Schema.maxLength(256))),
  deviceName: optional(DeviceName)
})) {}

export class ResetRequestPayload extends Schema.Class<ResetRequestPayload>("PasswordResetRequest")(StrictStruct({
  email: Email
})) {}

export class ResetConfirmPayload extends Schema.Class<ResetConfirmPayload>("PasswordResetConfirm")(StrictStruct({
  token: Schema.Redacted(Schema.String.pipe(Schema.minLength(1), Schema.maxLength(256))),
  newPassword: Password
})) {}

export class RefreshPayload extends Schema.Class<RefreshPayload>("RefreshPayload")(StrictStruct({
  refreshToken: Schema.Redacted(Schema.String.pipe(Schema.minLength(1), Schema.maxLength(256)))
})) {}

export class SessionResponse extends Schema.Class<SessionResponse>("Session")({
  accessToken: Schema.String,
  tokenType: Schema.Literal("Bearer"),
  expiresIn: Schema.Int.annotations({ description: "Seconds until accessToken expires (JWT_TTL)" }),
  refreshToken: Schema.String.annotations({
    description: "Opaque; POST /auth/refresh trades it for a new pair, after which it no longer works"
  }),
  refreshExpiresIn: Schema.Int.annotations({
    description: "Seconds until refreshToken expires unused (REFRESH_TTL, renewed by each refresh)"
  }),
  sessionId: SessionId,
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
      .annotate(OpenApi.Summary, "Sign in with email and password: a new device session")
  )
  .add(
    HttpApiEndpoint.post("refresh", "/refresh")
      .setPayload(RefreshPayload)
      .addSuccess(SessionResponse)
      .addError(Unauthorized)
      .annotate(
        OpenApi.Summary,
        "A new access token and refresh token for a refresh token, which then stops working (rotation). The same " +
          "refresh token again within REFRESH_GRACE (10 s) answers the same new refresh token (an answer lost on the " +
          "way); later, it was stolen: the session ends (401)"
      )
  )
  .add(
    HttpApiEndpoint.post("requestPasswordReset", "/password-reset")
      .setPayload(ResetRequestPayload)
      .addSuccess(HttpApiSchema.Accepted)
      .addError(RateLimited)
      .addError(ServiceUnavailable)
      .annotate(
        OpenApi.Summary,
        "Mail a one-time reset link (valid 30 minutes) to the account's address: 202 whether or not an account has " +
          "it; 503 when the server cannot send mail (production without SMTP_URL)"
      )
  )
  .add(
    HttpApiEndpoint.post("confirmPasswordReset", "/password-reset/confirm")
      .setPayload(ResetConfirmPayload)
      .addSuccess(HttpApiSchema.NoContent)
      .addError(InvalidResetToken)
      .annotate(OpenApi.Summary, "Set a new password with a reset link's token; every session of the account ends")
  )
  .prefix("/auth")
  .annotate(OpenApi.Title, "Auth")
{}

const sessionId = HttpApiSchema.param("id", SessionId)

export class WsTicket extends Schema.Class<WsTicket>("WsTicket")({
  ticket: Schema.String,
  expiresIn: Schema.Int.annotations({ description: "Seconds the ticket can be used in (once)" })
}) {}

/** Signed in: the caller's device sessions. */
export class SessionsApi extends HttpApiGroup.make("sessions")
  .add(
    HttpApiEndpoint.post("logout", "/logout")
      .addSuccess(HttpApiSchema.NoContent)
      .annotate(OpenApi.Summary, "End this device's session: its tokens stop working and its sockets close (4005)")
  )
  .add(
    HttpApiEndpoint.post("logoutAll", "/logout-all")
      .addSuccess(HttpApiSchema.NoContent)
      .annotate(OpenApi.Summary, "End every session of the caller, this one included, and every token issued so far")
  )
  .add(
    HttpApiEndpoint.post("wsTicket", "/ws-ticket")
      .addSuccess(WsTicket)
      .annotate(
        OpenApi.Summary,
        "A one-time ticket for /ws?ticket= (or Socket.IO's auth: { ticket }), valid 30 s: browsers need not put a " +
          "token in a URL. The socket lives as long as the access token that asked for it"
      )
  )
  .add(
    HttpApiEndpoint.post("sendPasswordReset")`/password-reset/users/${HttpApiSchema.param("userId", UserId)}`
      .addSuccess(HttpApiSchema.Accepted)
      .addError(Forbidden)
      .addError(UserNotFound)
      .addError(ServiceUnavailable)
      .annotate(OpenApi.Summary, "Mail a user a reset link (admin)")
  )
  .add(
    HttpApiEndpoint.get("listSessions", "/sessions")
      .addSuccess(Schema.Array(SessionJson))
      .annotate(OpenApi.Summary, "The caller's live sessions, oldest first (current: the one asking)")
  )
  .add(
    HttpApiEndpoint.del("revokeSession")`/sessions/${sessionId}`
      .addSuccess(HttpApiSchema.NoContent)
      .addError(SessionNotFound)
      .annotate(OpenApi.Summary, "End one of the caller's sessions (sign a lost phone out)")
  )
  .middleware(Authentication)
  .prefix("/auth")
  .annotate(OpenApi.Title, "Sessions")
{}
