import { Context, type Effect } from "effect"
import type { AuditEntry, NewAuditEntry } from "../audit/Model.js"
import type { Page } from "./UsersRepo.js"

/** Append-only: entries are never changed or removed. */
export class AuditLog extends Context.Tag("Ports/AuditLog")<AuditLog, {
  readonly record: (entry: NewAuditEntry) => Effect.Effect<void>
  readonly list: (page: { readonly limit: number; readonly offset: number }) => Effect.Effect<Page<AuditEntry>>
}>() {}
