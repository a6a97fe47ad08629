import { Model } from "@effect/sql"
import { Schema } from "effect"
import { WellFormed, wellFormed } from "../Fields.js"

export const UserId = Schema.UUID.pipe(
  Schema.brand("UserId"),
  Schema.annotations({ message: () => "must be a UUID" })
)
export type UserId = typeof UserId.Type

export const Role = Schema.Literal("user", "trainer", "admin").annotations({
  identifier: "Role",
  message: () => "must be one of user, trainer, admin"
})
export type Role = typeof Role.Type

const EmailShape = Schema.String.pipe(
  Schema.maxLength(254),
  Schema.pattern(/^[^\s@\0]+@[^\s@\0]+\.[^\s@\0]+$/),
  Schema.brand("Email"),
  Schema.annotations({ message: () => "must be a valid email address" })
)

/** Trimmed and lower-cased on the way in, so one mailbox is one account. */
export const Email = Schema.transform(Schema.String, EmailShape, {
  strict: false,
  decode: (s) => wellFormed(s.trim().toLowerCase()),
  encode: (s) => s
}).annotations({ identifier: "Email", examples: ["ada@example.com" as typeof EmailShape.Type] })
export type Email = typeof Email.Type

/** One check, one message: the message never echoes the value (it may be a password). */
const StringBetween = (min: number, max: number) =>
  Schema.String.pipe(
    // No NUL: Postgres text cannot hold one.
    Schema.filter((s) => s.length >= min && s.length <= max && !s.includes("\0"), {
      message: () => `must be ${min} to ${max} characters, without NUL`
    })
  )

export const Name = Schema.Trim.pipe(Schema.compose(WellFormed), Schema.compose(StringBetween(1, 100)))

export const AvatarUrl = Schema.String.pipe(
  Schema.maxLength(2048),
  Schema.pattern(/^https?:\/\/[^\s\0]+$/),
  Schema.annotations({ message: () => "must be an http(s) URL of at most 2048 characters" })
)

/** A password as typed by its owner: never logged, never echoed back. */
export const Password = Schema.Redacted(StringBetween(8, 256))

export class User extends Model.Class<User>("User")({
  id: Model.Generated(UserId),
  email: Email,
  passwordHash: Model.Sensitive(Schema.String),
  firstName: Name,
  lastName: Name,
  role: Role,
  avatar: Schema.NullOr(AvatarUrl),
  isActive: Schema.Boolean,
  assignedTrainerId: Schema.NullOr(UserId),
  /** Tokens issued before this instant (the last password change) no longer sign the user in. */
  tokensValidAfter: Model.Sensitive(Schema.NullOr(Model.DateTimeFromDate)),
  createdAt: Model.DateTimeInsertFromDate,
  updatedAt: Model.DateTimeUpdateFromDate
}) {}

/** The public face of a user: what every response carries, never the hash. */
export const UserJson = User.json
export type UserJson = typeof UserJson.Type
