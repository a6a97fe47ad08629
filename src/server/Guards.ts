import { internalError } from "../http/Middleware.js"
import type { InFlight } from "./InFlight.js"
import type { HttpRequest, HttpResponse } from "./Uws.js"

/**
 * How much of a refused body is read and dropped before the 413 goes out. Clients that send their whole body
 * before they read (fetch, node:http, OkHttp) see a reset, not the answer, when the connection closes under
 * what they still write: the rest is drained first (as nginx's lingering close), up to this bound.
 */
export const lingerBytes = 64 * 1024 * 1024

const tooLargeBody = (max: number) =>
  JSON.stringify({ _tag: "PayloadTooLarge", message: `The request body exceeds ${max} bytes` })

/**
 * A body beyond `max` bytes: the rest is dropped as it arrives, then 413 and the connection closes (its
 * framing is not worth trusting further). uWS answers `Expect: 100-continue` itself before any handler runs
 * (HttpContext.h), so such a client sends its body too and is drained the same way.
 */
export class Refusal {
  private dropped = 0
  private answered = false

  constructor(
    private readonly res: HttpResponse,
    private readonly max: number,
    /** The client went away: `res` is not touched again. */
    private readonly gone: () => boolean
  ) {}

  /**
   * Starts refusing: `remaining` body bytes are announced (undefined: not known, chunked). True when it answered
   * at once (nothing left to drain, or too much to): the response is over, and uWS's `res` must not be touched.
   */
  start(remaining: number | undefined, finished: boolean): boolean {
    if (finished || (remaining !== undefined && remaining > lingerBytes)) this.answer()
    return this.answered
  }

  /** One more chunk of the refused body, dropped; the answer goes once the body ended or passed the bound. */
  chunk(size: number, isLast: boolean) {
    this.dropped += size
    if (isLast || this.dropped > lingerBytes) this.answer()
  }

  answer() {
    if (this.answered || this.gone()) return
    this.answered = true
    this.res.cork(() => {
      this.res.writeStatus("413 Payload Too Large").writeHeader("content-type", "application/json")
        .end(tooLargeBody(this.max), true)
    })
  }
}

const overloaded = JSON.stringify({ _tag: "Overloaded", message: "The server is busy: retry in a moment" })

/**
 * 503 beyond the in-flight limit: nothing was done, retry in a moment. The wait is jittered (refused clients
 * must not come back together) and grows with how many were refused lately.
 */
export const refuseOverloaded = (res: HttpResponse, inFlight: InFlight) =>
  res.writeStatus("503 Service Unavailable").writeHeader("content-type", "application/json")
    .writeHeader("retry-after", String(inFlight.retryAfterSeconds())).end(overloaded)

const shuttingDown = JSON.stringify({ _tag: "ShuttingDown", message: "The server is shutting down: retry on another instance" })

/** 503 during shutdown, and the connection closes: a client kept alive moves on to another instance. */
export const refuseShuttingDown = (res: HttpResponse) =>
  res.writeStatus("503 Service Unavailable").writeHeader("content-type", "application/json")
    .writeHeader("retry-after", "1").end(shuttingDown, true)

/**
 * At a request's head, before its body is read: refused at once (true) when no new request would be taken now
 * (shutdown, or every slot busy). A request that passes takes its slot only once its body is in (`admit`).
 */
export const refusedAtHead = (res: HttpResponse, inFlight: InFlight): boolean => {
  if (!inFlight.accepting) {
    inFlight.onRefused(503, "shutting_down")
    refuseShuttingDown(res)
  } else if (inFlight.size >= inFlight.max) {
    inFlight.onRefused(503, "in_flight_limit")
    refuseOverloaded(res, inFlight)
  } else return false
  return true
}

/**
 * Whether a new request may be worked on, for every HTTP door of the listener: during shutdown it gets 503
 * ShuttingDown, beyond the in-flight limit 503 Overloaded; otherwise it holds a slot, to be released once.
 */
export const admit = (res: HttpResponse, inFlight: InFlight): boolean =>
  !refusedAtHead(res, inFlight) && inFlight.tryAcquire()

export const repeatedLength = JSON.stringify({
  _tag: "MalformedRequest",
  message: "The request has more than one Content-Length header"
})

/** 400, and the connection closes: where this body ends is not known. */
export const refuseRepeatedLength = (res: HttpResponse) =>
  res.writeStatus("400 Bad Request").writeHeader("content-type", "application/json").end(repeatedLength, true)

/** What the last-resort guard must know of a request to clean up after a throw. */
export interface GuardState {
  /** Frees the request's in-flight slot (idempotent), once it holds one. */
  release: (() => void) | undefined
  aborted: boolean
}

export const thrown = JSON.stringify(internalError)

/** One line for the log: the error's kind and the start of its message, never its stack. */
export const describeThrow = (error: unknown) =>
  error instanceof Error ? `${error.name}: ${error.message.slice(0, 200)}` : `a thrown ${typeof error}`

/**
 * The last-resort guard around a uWS HTTP handler: a throw must never reach uWS (Node would exit). It becomes a
 * 500 without stack when nothing was answered yet, frees the request's slot and is reported once.
 */
export const guarded = (
  onThrow: ((error: unknown) => void) | undefined,
  handler: (res: HttpResponse, req: HttpRequest, state: GuardState) => void
) =>
(res: HttpResponse, req: HttpRequest) => {
  const state: GuardState = { release: undefined, aborted: false }
  try {
    handler(res, req, state)
  } catch (error) {
    state.release?.()
    onThrow?.(error)
    if (state.aborted) return
    try {
      res.cork(() => res.writeStatus("500 Internal Server Error").writeHeader("content-type", "application/json").end(thrown, true))
    } catch {
      // Answered already (or gone): nothing more to say.
    }
  }
}

/** The same guard around a callback uWS calls later for a request (its body's chunks, a drain). */
export const guardedCallback = <A extends ReadonlyArray<unknown>, R>(
  onThrow: ((error: unknown) => void) | undefined,
  fallback: R,
  callback: (...args: A) => R
) =>
(...args: A): R => {
  try {
    return callback(...args)
  } catch (error) {
    onThrow?.(error)
    return fallback
  }
}
