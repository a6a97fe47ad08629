import * as HttpApiError from "@effect/platform/HttpApiError"
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import * as HttpMethod from "@effect/platform/HttpMethod"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as HttpServerError from "@effect/platform/HttpServerError"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Cause, Effect, Either, Option, ParseResult, Schema } from "effect"
import { isUnavailable, retryAfterMs } from "../infra/Unavailable.js"
import * as Issues from "../domain/Issues.js"
import { logRequest } from "./Shared.js"

/** How deep a JSON body may nest: no request of the API needs more, and deeper ones are refused before decoding. */
export const maxJsonDepth = 64

/** The answers of the problems below, as every REST door writes them. */
export const malformedBody = { _tag: "MalformedBody", message: "The request body is not valid JSON" } as const
export const tooDeepBody = {
  _tag: "MalformedBody",
  message: `The request body nests deeper than ${maxJsonDepth} levels`
} as const
export const internalError = { _tag: "InternalServerError", message: "Something went wrong on our side" } as const
export const unavailable = { _tag: "Unavailable", message: "A service the server depends on is unreachable: retry in a moment" } as const

/** Retry-After (whole seconds) of an `Unavailable` answer: 2 to 4 s, jittered so that clients spread out. */
export const unavailableRetryAfter = () => String(Math.max(1, Math.round(retryAfterMs(2000, 1) / 1000)))

const unavailableResponse = () =>
  HttpServerResponse.unsafeJson(unavailable, { status: 503, headers: { "retry-after": unavailableRetryAfter() } })

/**
 * Whether JSON text (a string or its UTF-8 bytes) opens more than `max` arrays or objects inside one another.
 * One pass, no allocation; strings are skipped, so brackets inside them do not count. Invalid JSON is left to
 * the parser.
 */
export const nestsDeeperThan = (text: string | Uint8Array, max = maxJsonDepth): boolean => {
  const bytes = typeof text !== "string"
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = bytes ? (text as Uint8Array)[i]! : (text as string).charCodeAt(i)
    if (inString) {
      if (c === 0x5c) i++
      else if (c === 0x22) inString = false
    } else if (c === 0x22) inString = true
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true
    } else if (c === 0x5d || c === 0x7d) depth--
  }
  return false
}

/**
 * A decode error as clients see it: each issue names its field (`path`) and the rule it broke, never the
 * value received (a password, a token pasted in the wrong field), and the summary is those issues in one
 * line, not a tree of the schema's internals.
 */
const withIssues = (issues: ReadonlyArray<Issues.Issue>) =>
  new HttpApiError.HttpApiDecodeError({ issues: issues.map((issue) => ({ ...issue, path: [...issue.path] })), message: Issues.summaryOf(issues) })

/** The same for an HttpApiDecodeError the platform made (its messages may print values). */
export const withoutValues = (error: HttpApiError.HttpApiDecodeError) =>
  withIssues(error.issues.map((issue) => ({ _tag: issue._tag, path: issue.path, message: Issues.ruleOf(issue.message) })))

/** The HttpApiDecodeError the HttpApp answers for a parse error, with no received value in it. */
export const decodeErrorOf = (error: ParseResult.ParseError) => withIssues(Issues.issuesOf(error))

const encodeDecodeError = Schema.encodeSync(HttpApiError.HttpApiDecodeError)

const isDecodeError = (error: unknown): error is HttpApiError.HttpApiDecodeError =>
  error instanceof HttpApiError.HttpApiDecodeError

/** HttpApiBuilder reads a body without content type, or with a JSON one, as JSON. */
export const isJsonContentType = (contentType: string | undefined) =>
  contentType === undefined || contentType.trim() === "" || contentType.toLowerCase().includes("application/json")

const problem = (status: number, tag: string, message: string) =>
  HttpServerResponse.unsafeJson({ _tag: tag, message }, { status })

const tooLarge = (max: number) => problem(413, "PayloadTooLarge", `The request body exceeds ${max} bytes`)

const pathOf = (request: HttpServerRequest.HttpServerRequest) => request.url.split("?", 1)[0] ?? "/"

/**
 * Around every route (docs included): a body size limit (413), readable
 * answers for bodies that are not JSON (400) and unknown routes (404), and a
 * generic 500 that never carries a stack. Typed API errors pass through: the
 * API encodes them itself.
 */
export const problems = (options: {
  readonly maxBodyBytes: number
  /** Routes whose bodies stream (uploads), with their own limit. */
  readonly streamedBody?: (method: string, path: string) => number | undefined
}) => (app: HttpApp.Default) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const streamedLimit = options.streamedBody?.(request.method, pathOf(request))
    const limit = streamedLimit ?? options.maxBodyBytes
    if (Number(request.headers["content-length"] ?? 0) > limit) return tooLarge(limit)
    if (streamedLimit === undefined && HttpMethod.hasBody(request.method) && isJsonContentType(request.headers["content-type"])) {
      // Read once here (the request keeps the text for the route); a read that fails is the route's to answer.
      const text = yield* Effect.either(HttpIncomingMessage.withMaxBodySize(request.text, Option.some(limit)))
      if (Either.isRight(text) && nestsDeeperThan(text.right)) return HttpServerResponse.unsafeJson(tooDeepBody, { status: 400 })
    }
    return yield* app.pipe(
      HttpIncomingMessage.withMaxBodySize(Option.some(limit)),
      Effect.catchAllCause((cause) => {
        // Infrastructure away (the database): not the client's fault, and not a reason to sign anyone out.
        if (isUnavailable(cause)) return Effect.succeed(unavailableResponse())
        // The platform's decode errors print what was received: answered here without it.
        const failure = Cause.failureOption(cause)
        return Option.isSome(failure) && isDecodeError(failure.value)
          ? Effect.succeed(HttpServerResponse.unsafeJson(encodeDecodeError(withoutValues(failure.value)), { status: 400 }))
          : Effect.failCause(cause)
      }),
      Effect.catchSome((error: unknown) =>
        HttpServerError.isServerError(error) && error._tag === "RouteNotFound"
          ? Option.some(Effect.succeed(problem(404, "RouteNotFound", "No such route: see /api for the routes")))
          : Option.none()
      ),
      Effect.catchAllDefect((defect) => fromDefect(defect, options.maxBodyBytes))
    )
  })

const fromDefect = (defect: unknown, maxBodyBytes: number): Effect.Effect<HttpServerResponse.HttpServerResponse> => {
  // Platform code answers early by dying with a response: let it through.
  if (HttpServerResponse.isServerResponse(defect)) return Effect.succeed(defect)
  if (HttpServerError.isServerError(defect) && defect._tag === "RequestError" && defect.reason === "Decode") {
    const exceeded = defect.cause instanceof Error && defect.cause.message.includes("maxBytes exceeded")
    return Effect.succeed(exceeded ? tooLarge(maxBodyBytes) : HttpServerResponse.unsafeJson(malformedBody, { status: 400 }))
  }
  return Effect.as(
    Effect.logError("Unhandled error", Cause.die(defect)),
    HttpServerResponse.unsafeJson(internalError, { status: 500 })
  )
}

/** One log line per request, naming its path but never its query string or headers, where tokens travel. */
export const requestLog = HttpMiddleware.make((app) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const start = Date.now()
    const response = yield* app
    yield* logRequest(request.method, pathOf(request), response.status, start)
    return response
  })
)
