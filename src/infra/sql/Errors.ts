import { SqlError } from "@effect/sql/SqlError"
import { Predicate } from "effect"

/** Postgres (and PGlite) report a broken unique constraint as SQLSTATE 23505, naming the constraint. */
export const isUniqueViolation = (constraint: string) => (error: unknown): boolean =>
  error instanceof SqlError &&
  Predicate.hasProperty(error.cause, "code") && error.cause.code === "23505" &&
  Predicate.hasProperty(error.cause, "constraint") && error.cause.constraint === constraint
