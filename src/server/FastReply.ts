import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import { Either, Schema, type SchemaAST } from "effect"
import { STATUS_CODES } from "node:http"
import { Api } from "../http/Api.js"
import * as Middleware from "../http/Middleware.js"
import { corsExposedHeaders, corsOrigins, retryAfterOf } from "../http/Shared.js"
import { admit } from "./Guards.js"
import type { InFlight } from "./InFlight.js"
import type { HttpResponse } from "./Uws.js"

// How the fast routes answer as the HttpApp would (src/server/FastRoutes.ts): the same statuses, bodies and headers.

/** An answer as the HttpApp gives it: JSON text (empty: no body), and a Retry-After for a 429. */
export interface Reply {
  readonly status: number
  readonly body: string
  readonly retryAfter?: string
}

export const json = (status: number, value: unknown): Reply => ({ status, body: JSON.stringify(value) })

// The answers of src/http/Middleware.ts (`problems`).
export const malformedBody = json(400, Middleware.malformedBody)
export const tooDeepBody = json(400, Middleware.tooDeepBody)
export const internalError = json(500, Middleware.internalError)
// What the HttpApp answers (no body, no log line) when its fiber is interrupted or a failure has no schema.
export const interrupted: Reply = { status: 503, body: "" }
export const unencodable: Reply = { status: 500, body: "" }

/**
 * The API's error schemas in the order HttpApiBuilder tries them (the API's, then each group's endpoints'
 * and the group's own): the first that encodes a failure gives its body and its annotated status.
 */
export const makeErrorReply = () => {
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
export const makeCors = (frontendUrl: string): (origin: string | undefined) => string | undefined => {
  const origins = corsOrigins(frontendUrl)
  const [only] = origins
  if (origins.length === 1 && only !== undefined) return () => only
  return (origin) => origin !== undefined && origins.includes(origin) ? origin : undefined
}

const exposedHeaders = corsExposedHeaders.join(",")

const statusLine = (status: number) => `${status} ${STATUS_CODES[status] ?? ""}`

/** One request on a fast route, from its head to its answer. */
export class Exchange {
  /** Answered, or the client went away: `res` is not touched again. */
  done = false
  start = 0
  /** Holds an in-flight slot: from the moment the domain takes the request until it answers. */
  private held = false

  constructor(
    readonly res: HttpResponse,
    /** For the request log. */
    readonly method: string,
    readonly path: string,
    readonly allowOrigin: string | undefined,
    private readonly slots: InFlight
  ) {}

  /** Takes an in-flight slot, or answers as every door does (503 ShuttingDown / Overloaded). */
  admit(): boolean {
    if (admit(this.res, this.slots)) return (this.held = true)
    this.done = true
    return false
  }

  release() {
    if (!this.held) return
    this.held = false
    this.slots.release()
  }

  /** The client went away. */
  gone = false

  aborted() {
    this.gone = true
    this.done = true
  }

  answer(reply: Reply) {
    this.release()
    if (this.done) return
    this.done = true
    const { allowOrigin, res } = this
    res.cork(() => {
      // The headers the HttpApp gives the same answer (CORS, content type, Retry-After).
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

