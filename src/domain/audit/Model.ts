import { Model } from "@effect/sql"
import { Schema } from "effect"
import { UserId } from "../users/Model.js"

export const AuditAction = Schema.Literal(
  "conversations.list",
  "conversation.view",
  "conversation.messages.view",
  "conversation.close",
  "attachment.view",
  "webhook.create",
  "webhook.delete"
).annotations({ identifier: "AuditAction" })
export type AuditAction = typeof AuditAction.Type

export class AuditEntry extends Model.Class<AuditEntry>("AuditEntry")({
  // A bigint in the database: a string here, so that no JSON number overflows.
  id: Model.Generated(Schema.String),
  actorId: UserId,
  action: AuditAction,
  targetId: Schema.NullOr(Schema.String),
  details: Schema.NullOr(Schema.Record({ key: Schema.String, value: Schema.Unknown })),
  createdAt: Model.DateTimeInsertFromDate
}) {}

export interface NewAuditEntry {
  readonly actorId: UserId
  readonly action: AuditAction
  readonly targetId: string | null
  readonly details: Readonly<Record<string, unknown>> | null
}
