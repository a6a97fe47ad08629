import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import { Schema } from "effect"
import { message } from "../Errors.js"

export const SessionId = Schema.UUID.pipe(
  Schema.brand("SessionId"),
  Schema.annotations({ message: () => "must be a UUID" })
)
export type SessionId = typeof SessionId.Type

export class SessionNotFound extends Schema.TaggedError<SessionNotFound>()(
  "SessionNotFound",
  { id: Schema.String, message: message("No such session") },
  HttpApiSchema.annotations({ status: 404 })
) {}

/** A session as its owner sees it. */
export class SessionJson extends Schema.Class<SessionJson>("DeviceSession")({
  id: SessionId,
  deviceName: Schema.NullOr(Schema.String),
  createdAt: Schema.DateTimeUtc,
  lastUsedAt: Schema.DateTimeUtc,
  expiresAt: Schema.DateTimeUtc,
  /** The session of the token that asked. */
  current: Schema.Boolean
}) {}
