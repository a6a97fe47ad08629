import {
  HttpApp,
  HttpIncomingMessage,
  HttpMiddleware,
  HttpServerError,
  HttpServerRequest,
  HttpServerResponse
} from "@effect/platform"
import { Cause, Effect, Option } from "effect"

/** The answers of the problems below, as every REST door writes them. */
export const malformedBody = { _tag: "MalformedBody", message: "The request body is not valid JSON" } as const
export const internalError = { _tag: "InternalServerError", message: "Something went wrong on our side" } as const

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
    const limit = options.streamedBody?.(request.method, pathOf(request)) ?? options.maxBodyBytes
    if (Number(request.headers["content-length"] ?? 0) > limit) return tooLarge(limit)
    return yield* app.pipe(
      HttpIncomingMessage.withMaxBodySize(Option.some(limit)),
      Effect.catchSome((error: unknown) =>
        HttpServerError.isServerError(error) && error._tag === "RouteNotFound"
          ? Option.some(Effect.succeed(problem(404, "RouteNotFound", `No route for ${request.method} ${pathOf(request)}`)))
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
    yield* Effect.logInfo(`${request.method} ${pathOf(request)} ${response.status}`).pipe(
      Effect.annotateLogs({ ms: Date.now() - start })
    )
    return response
  })
)
