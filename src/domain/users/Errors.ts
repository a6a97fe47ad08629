import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import { Schema } from "effect"
import { message } from "../Errors.js"
import { UserId } from "./Model.js"

export class UserNotFound extends Schema.TaggedError<UserNotFound>()(
  "UserNotFound",
  { id: UserId, message: message("User not found") },
  HttpApiSchema.annotations({ status: 404 })
) {}

export class EmailTaken extends Schema.TaggedError<EmailTaken>()(
  "EmailTaken",
  { message: message("An account with this email already exists") },
  HttpApiSchema.annotations({ status: 409 })
) {}

export class InvalidCredentials extends Schema.TaggedError<InvalidCredentials>()(
  "InvalidCredentials",
  { message: message("Invalid email or password") },
  HttpApiSchema.annotations({ status: 401 })
) {}

export class AccountInactive extends Schema.TaggedError<AccountInactive>()(
  "AccountInactive",
  { message: message("This account is deactivated") },
  HttpApiSchema.annotations({ status: 403 })
) {}

export class WrongCurrentPassword extends Schema.TaggedError<WrongCurrentPassword>()(
  "WrongCurrentPassword",
  { message: message("currentPassword does not match") },
  HttpApiSchema.annotations({ status: 400 })
) {}

export class InvalidAssignment extends Schema.TaggedError<InvalidAssignment>()(
  "InvalidAssignment",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 400 })
) {}

export class InvalidResetToken extends Schema.TaggedError<InvalidResetToken>()(
  "InvalidResetToken",
  { message: message("This reset link is invalid, used or expired: ask for a new one") },
  HttpApiSchema.annotations({ status: 400 })
) {}
