import { Cause, Effect, Either, Exit, FiberSet, Option, type ParseResult, Schema } from "effect"
import { Metrics } from "../domain/ports/Metrics.js"
import { TracingEnabled } from "../domain/ports/Tracing.js"
import { httpServerSpan } from "../infra/telemetry/Tracing.js"
import { Messages } from "../domain/chat/Messages.js"
import { HistoryJson } from "../infra/sql/HistoryJson.js"
import { encodeMessage, historyPageJson } from "../infra/wire/MessageJson.js"
import { Auth } from "../domain/users/Auth.js"
import { isUnavailable } from "../infra/Unavailable.js"
import * as Middleware from "../http/Middleware.js"
import { bearerOf, logRequest, missingBearer } from "../http/Shared.js"
import { ChatApi } from "../http/chat/Api.js"
import {
  Exchange,
  internalError,
  interrupted,
  json,
  makeCors,
  makeErrorReply,
  malformedBody,
  type Reply,
  tooDeepBody,
  unencodable
} from "./FastReply.js"
import { normalizeUrlParams, parseQuery, plainQuery, plainSegment, readHeaders } from "./FastRequest.js"
import { readBody } from "./Body.js"
import { describeThrow, guarded, refusedAtHead } from "./Guards.js"
import type { InFlight } from "./InFlight.js"
import type { TemplatedApp } from "./Uws.js"

const utf8 = new TextDecoder()

const sendPath = "/chat/messages"
const historyRoute = "/chat/conversations/:id/messages"

/**
 * `POST /chat/messages` and `GET /chat/conversations/:id/messages`, served on uWS directly instead of
 * through the HttpApp, whose per-request cost is twice these requests' whole cost (bench/RESULTS.md, the
 * A/B of 2026-12-07: 4,000 sends/s through the HttpApp, 8,500/s here), with the same answers: statuses,
 * bodies, headers, the request log line. What they do as the HttpApp does comes from the same modules:
 * admission, body limits and 413 (`Guards`, `Body`), the contract's schemas to decode requests and encode
 * errors, CORS, bearer parsing, Retry-After and the log line (`http/Shared`, `http/Middleware`). Anything
 * unusual (a body that is not JSON, a repeated header, an encoded path or query) is left to the HttpServer's
 * `/*` route (`req.setYield`), which answers it as before. Register before the HttpServer serves.
 */
export const serveFastRoutes = (
  app: TemplatedApp,
  options: {
    /** Where the work runs: shutdown waits for it. */
    readonly fibers: FiberSet.FiberSet<unknown, unknown>
    readonly inFlight: InFlight
    readonly maxBodyBytes: number
    readonly frontendUrl: string
  }
) =>
  Effect.gen(function*() {
    const auth = yield* Auth
    const messages = yield* Messages
    const pages = yield* HistoryJson
    const run = yield* FiberSet.runtime(options.fibers)<never>()
    const tracing = yield* TracingEnabled
    const { inFlight, maxBodyBytes } = options

    const send = ChatApi.endpoints.sendMessage
    const history = ChatApi.endpoints.history
    if (send?.name !== "sendMessage" || history?.name !== "history") {
      return yield* Effect.dieMessage("FastRoutes: the chat contract has no sendMessage or history endpoint")
    }
    const decodePayload = Schema.decodeUnknownEither(yield* Effect.orDie(send.payloadSchema))
    const decodePath = Schema.decodeUnknownEither(yield* Effect.orDie(history.pathSchema))
    const paramsSchema = yield* Effect.orDie(history.urlParamsSchema)
    const decodeParams = Schema.decodeUnknownEither(paramsSchema)
    const errorReply = makeErrorReply()
    const metrics = yield* Metrics
    const corsFor = makeCors(options.frontendUrl)

    /** The body HttpApiDecodeError.fromParseError gives, encoded as the API encodes it. */
    const decodeFailure = (error: ParseResult.ParseError): Reply => errorReply(Middleware.decodeErrorOf(error)) ?? unencodable

    /** The request log line of `requestLog` (src/http/Middleware.ts). */
    const logged = (x: Exchange, reply: Reply) => Effect.as(logRequest(x.method, x.path, reply.status, x.start), reply)

    // As the HttpApp: a defect is a logged 500 (`problems`); a failure, its schema's answer; an interruption, 503.
    const fromCause = (x: Exchange, cause: Cause.Cause<unknown>): Effect.Effect<Reply> => {
      if (isUnavailable(cause)) {
        return logged(x, { status: 503, body: JSON.stringify(Middleware.unavailable), retryAfter: Middleware.unavailableRetryAfter() })
      }
      const defect = Cause.dieOption(cause)
      if (Option.isSome(defect)) {
        return Effect.zipRight(Effect.logError("Unhandled error", Cause.die(defect.value)), logged(x, internalError))
      }
      const failure = Cause.failureOption(cause)
      if (Option.isNone(failure)) return Effect.succeed(interrupted)
      const reply = errorReply(failure.value)
      return reply === undefined ? Effect.succeed(unencodable) : logged(x, reply)
    }

    /** With tracing on, the request in a server span (its log line inside it). */
    const traced = (x: Exchange, traceparent: string, answered: Effect.Effect<Reply>) =>
      tracing
        ? httpServerSpan({ method: x.method, path: x.path, route: x.method === "POST" ? sendPath : historyRoute, traceparent }, answered)
        : answered

    const serve = (x: Exchange, work: Effect.Effect<Reply, unknown>, traceparent: string) => {
      if (!x.admit()) return
      x.start = Date.now()
      const fiber = run(traced(x, traceparent, Effect.matchCauseEffect(work, {
        onSuccess: (reply) => logged(x, reply),
        onFailure: (cause) => fromCause(x, cause)
      })))
      fiber.addObserver((exit) => x.answer(Exit.isSuccess(exit) ? exit.value : interrupted))
    }

    /** A throw the last-resort guard caught: one line, no stack. */
    const onThrow = (error: unknown) => void run(Effect.logError(`HTTP handler threw: ${describeThrow(error)}`))

    const sendWork = (token: string, text: string): Effect.Effect<Reply, unknown> => {
      const arrived = performance.now()
      // The order of the HttpApp: authentication first, then the body.
      if (token === "") return Effect.fail(missingBearer)
      return Effect.flatMap(auth.authenticate(token), (actor) => {
        let body: unknown
        try {
          body = JSON.parse(text)
        } catch {
          return Effect.succeed(malformedBody)
        }
        const payload = decodePayload(body)
        // Only a body the schema refused can nest deeply: its depth is looked at before the error is formatted.
        if (Either.isLeft(payload)) {
          return Effect.succeed(Middleware.nestsDeeperThan(text) ? tooDeepBody : decodeFailure(payload.left))
        }
        return Effect.map(
          messages.send(actor, payload.right),
          ({ created, message }) => {
            metrics.messageSent("rest", (performance.now() - arrived) / 1000, created)
            return json(created ? 201 : 200, encodeMessage(message))
          }
        )
      })
    }

    const historyWork = (token: string, id: string, query: string): Effect.Effect<Reply, unknown> => {
      if (token === "") return Effect.fail(missingBearer)
      return Effect.flatMap(auth.authenticate(token), (actor) => {
        const path = decodePath({ id })
        if (Either.isLeft(path)) return Effect.succeed(decodeFailure(path.left))
        const params = decodeParams(normalizeUrlParams(parseQuery(query), paramsSchema.ast))
        if (Either.isLeft(params)) return Effect.succeed(decodeFailure(params.left))
        return Effect.map(
          Effect.zipRight(messages.readable(actor, path.right.id, params.right), pages.page(path.right.id, params.right)),
          (page): Reply => ({ status: 200, body: historyPageJson(page) })
        )
      })
    }

    app.post(sendPath, guarded(onThrow, (res, req, state) => {
      const headers = readHeaders(req)
      if (headers === undefined || !Middleware.isJsonContentType(headers.contentType) || req.getUrl() !== sendPath) {
        req.setYield(true)
        return
      }
      if (refusedAtHead(res, inFlight)) return
      const x = new Exchange(res, "POST", sendPath, corsFor(headers.origin), inFlight)
      state.release = () => x.release()
      const token = bearerOf(headers.authorization)
      const traceparent = tracing ? req.getHeader("traceparent") : ""
      res.onAborted(() => {
        state.aborted = true
        x.aborted()
      })
      // Read as the HttpServer reads a body: the same limit, the same 413 once the rest was drained.
      readBody(res, {
        limit: maxBodyBytes,
        declaredLength: headers.contentLength === "" ? undefined : Number(headers.contentLength),
        streamed: false,
        // Decoded during the callback: the bytes need no copy.
        onBody: (bytes) => serve(x, sendWork(token, utf8.decode(bytes)), traceparent),
        onStream: () => undefined
      }, {
        isDone: () => x.done,
        gone: () => x.gone,
        onTooLarge: () => {
          x.done = true
          inFlight.onRefused(413, "body_too_large")
        },
        onAbort: () => undefined,
        crash: (error) => {
          onThrow(error)
          x.answer(internalError)
        }
      })
    }))

    app.get(historyRoute, guarded(onThrow, (res, req, state) => {
      const id = req.getParameter(0)
      const query = req.getQuery() || ""
      const path = req.getUrl()
      const headers = readHeaders(req)
      if (
        headers === undefined || !plainSegment.test(id) || !plainQuery.test(query) || query.includes("__proto__") ||
        path !== `/chat/conversations/${id}/messages`
      ) {
        req.setYield(true)
        return
      }
      const x = new Exchange(res, "GET", path, corsFor(headers.origin), inFlight)
      state.release = () => x.release()
      res.onAborted(() => {
        state.aborted = true
        x.aborted()
      })
      serve(x, historyWork(bearerOf(headers.authorization), id, query), tracing ? req.getHeader("traceparent") : "")
    }))
  })
