import type { Teardown } from "@effect/platform/Runtime"
import { Cause, ConfigProvider, Console, Effect, Exit, Layer } from "effect"

/**
 * Configuration from the process environment, where a variable set to the
 * empty string counts as not set (compose files and shells produce `X=` for
 * "nothing"): `ADMIN_EMAIL=` must not fail the start, `DATABASE_URL=` must not
 * switch to Postgres.
 */
export const layer = Layer.suspend(() =>
  Layer.setConfigProvider(
    ConfigProvider.fromMap(
      new Map(Object.entries(process.env).filter((entry): entry is [string, string] => (entry[1] ?? "").trim() !== ""))
    )
  )
)

/**
 * Reads `.env` from the working directory into the environment when it is there, as the
 * original's `cp .env.example .env` promises; variables already set in the real environment win.
 * Called by the entry points before anything reads configuration.
 */
export const loadDotEnv = (path = ".env"): void => {
  try {
    process.loadEnvFile(path)
  } catch (error) {
    if (typeof error === "object" && error !== null && "code" in error && error.code === "ENOENT") return
    throw error
  }
}

/**
 * A start refused for a reason the operator acts on (the data directory is taken, seeding in
 * production): the reason as one line on stderr, no stack trace, and exit code 1 (see `teardown`).
 */
export const refuse = (reason: { readonly message: string }) =>
  Effect.zipRight(Console.error(reason.message), Effect.sync(() => void (process.exitCode = 1)))

/** `runMain`'s teardown, which also exits with a code `refuse` set. */
export const teardown: Teardown = (exit, onExit) =>
  onExit(
    Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause)
      ? 1
      : typeof process.exitCode === "number"
      ? process.exitCode
      : 0
  )
