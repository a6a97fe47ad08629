import { SqlError } from "@effect/sql/SqlError"
import { Cause, Option, Predicate } from "effect"

/**
 * SQLSTATE classes that mean the database is away or refusing work for now, not that the query is
 * wrong: 08 connection exception, 53 insufficient resources, 57P01–57P03 shutdown / cannot connect now,
 * 58 system error.
 */
const transientState = (code: string) =>
  code.startsWith("08") || code.startsWith("53") || code.startsWith("58") ||
  code === "57P01" || code === "57P02" || code === "57P03"

/** Node's socket errors: the peer is not there (or went away). */
const networkCodes = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "ENOTFOUND", "EHOSTUNREACH", "ENETUNREACH", "EAI_AGAIN"])

const isTransientSqlError = (error: SqlError): boolean => {
  if (error.message.startsWith("Failed to acquire connection") || error.message === "Connection error") return true
  if (error.message === "PgClient: Failed to connect") return true
  const cause = error.cause
  if (Predicate.hasProperty(cause, "code") && typeof cause.code === "string") {
    return networkCodes.has(cause.code) || (/^[0-9A-Z]{5}$/.test(cause.code) && transientState(cause.code))
  }
  // The driver's own errors for a connection that ended under a statement carry no code.
  return cause instanceof Error && /connection (terminated|ended|closed)|timeout exceeded|Client has encountered a connection error/i.test(cause.message)
}

/**
 * Whether a failure is infrastructure being away (the database unreachable, refusing connections, shutting
 * down; attachment storage failing), not the request's fault nor a bug: doors answer it with 503 / `Unavailable` and a retry hint, never
 * 401 or 500, and nothing caches it. Repos turn such failures into defects, so both failures and defects
 * are looked at.
 */
export const isUnavailable = (cause: Cause.Cause<unknown>): boolean => {
  const failure = Cause.failureOption(cause)
  const values = Option.isSome(failure) ? [failure.value] : Cause.defects(cause)
  for (const value of values) if (isUnavailableValue(value)) return true
  return false
}

/** Tags of failures that are a backend away by their nature: attachment storage (disk or S3) failing. */
const unavailableTags = new Set(["Unavailable", "StorageError"])

export const isUnavailableValue = (value: unknown): boolean =>
  value instanceof SqlError
    ? isTransientSqlError(value)
    : Predicate.hasProperty(value, "_tag") && typeof value._tag === "string" && unavailableTags.has(value._tag)

/** A retry hint with jitter, so that clients told to come back do not come back together. */
export const retryAfterMs = (baseMs: number, spread = 1) => Math.round(baseMs * (1 + spread * Math.random()))
