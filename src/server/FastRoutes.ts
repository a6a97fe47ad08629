import { HttpApiSchema } from "@effect/platform"
import { Cause, Effect, Either, Exit, FiberSet, Option, ParseResult, Schema, type SchemaAST } from "effect"
import { STATUS_CODES } from "node:http"
import { Messages } from "../domain/chat/Messages.js"
import { encodeMessage, historyPageJson } from "../domain/chat/Model.js"
import { Auth } from "../domain/users/Auth.js"
import { isUnavailable } from "../infra/Unavailable.js"
import { Api } from "../http/Api.js"
import * as Middleware from "../http/Middleware.js"
import { bearerOf, corsExposedHeaders, corsOrigins, logRequest, missingBearer, retryAfterOf } from "../http/Shared.js"
import { ChatApi } from "../http/chat/Api.js"
import { describeThrow, guarded, guardedCallback, Refusal, refuseOverloaded } from "./Guards.js"
import type { InFlight } from "./InFlight.js"
import type { HttpRequest, HttpResponse, TemplatedApp } from "./Uws.js"

/** An answer as the HttpApp gives it: JSON text (empty: no body), and a Retry-After for a 429. */
interface Reply {
  readonly status: number
  readonly body: string
  readonly retryAfter?: string
}

const json = (status: number, value: unknown): Reply => ({ status, body: JSON.stringify(value) })

// The answers of src/http/Middleware.ts (`problems`).
const malformedBody = json(400, Middleware.malformedBody)
const tooDeepBody = json(400, Middleware.tooDeepBody)
const internalError = json(500, Middleware.internalError)
// What the HttpApp answers (no body, no log line) when its fiber is interrupted or a failure has no schema.
const interrupted: Reply = { status: 503, body: "" }
const unencodable: Reply = { status: 500, body: "" }

const utf8 = new TextDecoder()

/** As the bridge's web `Request` would give a header: one value, printable ASCII, trimmed. */
const plainHeader = /^[\x20-\x7e]*$/
/** A path segment and a query that URL normalisation and percent-decoding leave exactly as they are. */
const plainSegment = /^[\w-]+$/
const plainQuery = /^[\w.=&-]*$/

interface RequestHeaders {
  readonly authorization: string
  readonly contentType: string
  readonly contentLength: string
  readonly origin: string | undefined
}

const readHeaderNames = new Set(["authorization", "content-type", "content-length", "origin"])

/** The headers these routes read; undefined when one is repeated or unusual (the generic path handles those). */
const readHeaders = (req: HttpRequest): RequestHeaders | undefined => {
  const found = new Map<string, string>()
  let unusual = false
  req.forEach((key, value) => {
    if (!readHeaderNames.has(key)) return
    unusual ||= found.has(key) || !plainHeader.test(value)
    found.set(key, value.trim())
  })
  return unusual ? undefined : {
    authorization: found.get("authorization") ?? "",
    contentType: found.get("content-type") ?? "",
    contentLength: found.get("content-length") ?? "",
    origin: found.get("origin")
  }
}

/** The query as the HttpApp's router (find-my-way) parses it, for the characters `plainQuery` lets through. */
const parseQuery = (query: string): Record<string, string | Array<string>> => {
  const params = new Map<string, string | Array<string>>()
  for (const pair of query.split("&")) {
    const eq = pair.indexOf("=")
    if (eq === -1 && pair === "") continue
    const key = eq === -1 ? pair : pair.slice(0, eq)
    const value = eq === -1 ? "" : pair.slice(eq + 1)
    const seen = params.get(key)
    params.set(key, seen === undefined ? value : typeof seen === "string" ? [seen, value] : [...seen, value])
  }
  return Object.fromEntries(params)
}

// `normalizeUrlParams` of HttpApiBuilder (internal there): a lone value for a key that is not a single string
// in the schema becomes an array of one.
const isSingleStringType = (ast: SchemaAST.AST, key?: PropertyKey): boolean => {
  switch (ast._tag) {
    case "StringKeyword":
    case "Literal":
    case "TemplateLiteral":
    case "Enums":
      return true
    case "TypeLiteral": {
      if (key === undefined) return false
      const property = ast.propertySignatures.find((ps) => ps.name === key)
      return property !== undefined
        ? isSingleStringType(property.type, key)
        : ast.indexSignatures.some((is) => Schema.is(Schema.make(is.parameter))(key) && isSingleStringType(is.type))
    }
    case "Union":
      return ast.types.some((type) => isSingleStringType(type, key))
    case "Suspend":
      return isSingleStringType(ast.f(), key)
    case "Refinement":
    case "Transformation":
      return isSingleStringType(ast.from, key)
  }
  return false
}

const normalizeUrlParams = (params: Record<string, string | Array<string>>, ast: SchemaAST.AST) => {
  const out: Record<string, string | Array<string>> = {}
  for (const key in params) {
    const value = params[key]
    if (value !== undefined) out[key] = Array.isArray(value) || isSingleStringType(ast, key) ? value : [value]
  }
  return out
}

/**
 * The API's error schemas in the order HttpApiBuilder tries them (the API's, then each group's endpoints'
 * and the group's own): the first that encodes a failure gives its body and its annotated status.
 */
const makeErrorReply = () => {
  const schemas = new Set<Schema.Schema.Any>()
  const collect = ({ ast }: { readonly ast: SchemaAST.AST }) => HttpApiSchema.deunionize(schemas, Schema.make(ast))
  collect(Api.errorSchema)
  for (const group of Object.values(Api.groups)) {
    for (const endpoint of Object.values(group.endpoints)) collect(endpoint.errorSchema)
    collect(group.errorSchema)
  }
  const codecs = Array.from(schemas, ({ ast }) => ({
    encode: Schema.encodeUnknownEither(Schema.make<unknown, unknown, never>(ast)),
    status: HttpApiSchema.getStatusErrorAST(ast),
    empty: HttpApiSchema.isVoid(ast)
  }))
  return (error: unknown): Reply | undefined => {
    for (const codec of codecs) {
      const encoded = codec.encode(error)
      if (Either.isLeft(encoded)) continue
      const body = codec.empty ? "" : JSON.stringify(encoded.right)
      const retryAfter = retryAfterOf(error)
      return retryAfter === undefined ? { status: codec.status, body } : { status: codec.status, body, retryAfter }
    }
    return undefined
  }
}

/** What HttpMiddleware.cors adds to every answer of the HttpApp, for the origins of FRONTEND_URL. */
const makeCors = (frontendUrl: string): (origin: string | undefined) => string | undefined => {
  const origins = corsOrigins(frontendUrl)
  const [only] = origins
  if (origins.length === 1 && only !== undefined) return () => only
  return (origin) => origin !== undefined && origins.includes(origin) ? origin : undefined
}

const exposedHeaders = corsExposedHeaders.join(",")

const statusLine = (status: number) => `${status} ${STATUS_CODES[status] ?? ""}`

/** One request on a fast route, from its admission (an in-flight slot) to its answer. */
class Exchange {
  /** Answered, or the client went away: `res` is not touched again. */
  done = false
  /** Handed to the domain: its slot is held until it answers, even if the client goes away. */
  dispatched = false
  start = 0
  private released = false

  constructor(
    readonly res: HttpResponse,
    /** For the request log. */
    readonly method: string,
    readonly path: string,
    readonly allowOrigin: string | undefined,
    private readonly slots: InFlight
  ) {}

  release() {
    if (this.released) return
    this.released = true
    this.slots.release()
  }

  /** The client went away. */
  gone = false

  aborted() {
    this.gone = true
    this.done = true
    if (!this.dispatched) this.release()
  }

  answer(reply: Reply) {
    this.release()
    if (this.done) return
    this.done = true
    const { allowOrigin, res } = this
    res.cork(() => {
      // The headers in the order the bridge writes the HttpApp's (a web `Headers` iterates sorted by name).
      res.writeStatus(statusLine(reply.status))
      if (allowOrigin !== undefined) res.writeHeader("access-control-allow-origin", allowOrigin)
      res.writeHeader("access-control-expose-headers", exposedHeaders)
      if (reply.body !== "") res.writeHeader("content-type", "application/json")
      if (reply.retryAfter !== undefined) res.writeHeader("retry-after", reply.retryAfter)
      if (allowOrigin !== undefined) res.writeHeader("vary", "Origin")
      res.end(reply.body)
    })
  }
}

const sendPath = "/chat/messages"

/**
 * `POST /chat/messages` and `GET /chat/conversations/:id/messages`, served on uWS directly instead of
 * through the bridge and the HttpApp (whose per-request cost is most of these requests' CPU), with the
 * same answers: statuses, bodies, headers, the request log line. The contract's own schemas decode the
 * requests and encode the errors; anything unusual (a body that is not JSON, a repeated header, an
 * encoded path or query) is left to the generic `/*` route (`req.setYield`), which answers it as before.
 * Register before `serveHttp`.
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
    const run = yield* FiberSet.runtime(options.fibers)<never>()
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

    const serve = (x: Exchange, work: Effect.Effect<Reply, unknown>) => {
      x.dispatched = true
      x.start = Date.now()
      const fiber = run(Effect.matchCauseEffect(work, {
        onSuccess: (reply) => logged(x, reply),
        onFailure: (cause) => fromCause(x, cause)
      }))
      fiber.addObserver((exit) => x.answer(Exit.isSuccess(exit) ? exit.value : interrupted))
    }

    /** Takes an in-flight slot, or refuses at once as the bridge does (503, without CORS or log line). */
    const admit = (res: HttpResponse) => {
      if (inFlight.tryAcquire()) return true
      refuseOverloaded(res, inFlight)
      return false
    }

    /** A throw the last-resort guard caught: one line, no stack. */
    const onThrow = (error: unknown) => void run(Effect.logError(`HTTP handler threw: ${describeThrow(error)}`))

    const sendWork = (token: string, text: string): Effect.Effect<Reply, unknown> => {
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
          ({ created, message }) => json(created ? 201 : 200, encodeMessage(message))
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
          messages.historyJson(actor, path.right.id, params.right),
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
      if (!admit(res)) return
      const x = new Exchange(res, "POST", sendPath, corsFor(headers.origin), inFlight)
      state.release = () => x.release()
      const token = bearerOf(headers.authorization)
      res.onAborted(() => {
        state.aborted = true
        x.aborted()
      })
      const declared = headers.contentLength === "" ? undefined : Number(headers.contentLength)
      let refusal: Refusal | undefined
      // As the bridge: the slot is free at once, the rest of the body drained, then 413.
      const tooLarge = (received: number, finished: boolean) => {
        x.done = true
        x.release()
        refusal = new Refusal(res, maxBodyBytes, () => x.gone)
        refusal.start(declared === undefined ? undefined : declared - received, finished)
      }
      if (declared !== undefined && declared > maxBodyBytes) tooLarge(0, false)
      const crash = (error: unknown) => {
        onThrow(error)
        x.answer(internalError)
      }
      let chunks: Array<Buffer> | undefined
      let size = 0
      res.onData(guardedCallback(crash, undefined, (chunk: ArrayBuffer, isLast: boolean) => {
        if (refusal !== undefined) return refusal.chunk(chunk.byteLength, isLast)
        if (x.done) return
        size += chunk.byteLength
        if (size > maxBodyBytes) return tooLarge(size, isLast)
        // The chunk is neutered when this callback returns: copied, or decoded now.
        if (!isLast) {
          chunks ??= []
          chunks.push(Buffer.from(new Uint8Array(chunk)))
          return
        }
        const last = new Uint8Array(chunk)
        serve(x, sendWork(token, utf8.decode(chunks === undefined ? last : Buffer.concat([...chunks, last]))))
      }))
    }))

    app.get("/chat/conversations/:id/messages", guarded(onThrow, (res, req, state) => {
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
      if (!admit(res)) return
      const x = new Exchange(res, "GET", path, corsFor(headers.origin), inFlight)
      state.release = () => x.release()
      res.onAborted(() => {
        state.aborted = true
        x.aborted()
      })
      serve(x, historyWork(bearerOf(headers.authorization), id, query))
    }))
  })
