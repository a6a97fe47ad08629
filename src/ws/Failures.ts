import { Cause, Effect, Predicate } from "effect"
import { FailureLog } from "./FailureLog.js"
import type { ErrorData } from "./Protocol.js"

export const internalError: ErrorData = { code: "Internal", message: "Something went wrong on our side" }

/** The database (or another backend) is away: nothing was done, the client retries later and keeps its token. */
export const unavailableError: ErrorData = {
  code: "Unavailable",
  message: "The service is briefly unavailable: retry shortly"
}
export const unavailableRetryMs = 1000

/** An answer after a failure: when even that throws (the socket or response is gone), the log line is all. */
export const answerQuietly = (answer: () => void) => {
  try {
    answer()
  } catch {
    // gone already
  }
}

const kindOf = (cause: Cause.Cause<unknown>) => {
  const error = Cause.squash(cause)
  const name = error instanceof Error
    ? error.name
    : Predicate.hasProperty(error, "_tag") ? String(error._tag) : typeof error
  return name.slice(0, 64)
}

/** The door's failure log: each kind of failure (where, and what failed) is logged once per period, then counted. */
export class Failures {
  private readonly log: FailureLog

  constructor(private readonly run: (effect: Effect.Effect<void>) => void) {
    this.log = new FailureLog(10_000, (kind, suppressed, periodMs) =>
      run(Effect.logWarning(`WebSocket ${kind}: ${suppressed} more in the last ${periodMs / 1000} s`)))
  }

  /** A failure nobody asked for: logged (the client gets its answer elsewhere). */
  failed(where: string, cause: Cause.Cause<unknown>): void {
    if (Cause.isInterruptedOnly(cause)) return
    const kind = `${where} failed (${kindOf(cause)})`
    if (this.log.take(kind)) this.run(Effect.logError(`WebSocket ${kind}`, cause))
  }

  /** A backend is away: one line per period, its first line only. */
  unavailable(where: string, cause: Cause.Cause<unknown>): void {
    const kind = `${where}: a backend is unavailable (${kindOf(cause)})`
    if (this.log.take(kind)) {
      this.run(Effect.logWarning(`WebSocket ${kind}: answered Unavailable`, Cause.pretty(cause).split("\n")[0]))
    }
  }
}
