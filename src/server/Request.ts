import * as Cookies from "@effect/platform/Cookies"
import * as Headers from "@effect/platform/Headers"
import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import * as HttpServerError from "@effect/platform/HttpServerError"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Multipart from "@effect/platform/Multipart"
import * as UrlParams from "@effect/platform/UrlParams"
import type { HttpMethod } from "@effect/platform/HttpMethod"
import { Effect, Inspectable, Option, Stream } from "effect"
import * as MultipartParts from "./Multipart.js"

/**
 * A request's body as the server hands it over: read whole before the handler runs (every route but
 * uploads, bounded by `HTTP_MAX_BODY_BYTES`), or streaming as uWS receives it (uploads), or none.
 */
export type Body =
  | { readonly _tag: "None" }
  | { readonly _tag: "Whole"; readonly bytes: Uint8Array }
  | { readonly _tag: "Streaming"; readonly stream: ReadableStream<Uint8Array> }

export const noBody: Body = { _tag: "None" }

/** What uWS tells of a request, copied out during its callback (uWS's own objects die with it). */
export interface Head {
  readonly method: HttpMethod
  /** Path and query, as the client sent them. */
  readonly url: string
  readonly headers: Headers.Headers
  readonly remoteAddress: string
}

const decoder = new TextDecoder()

/**
 * `HttpServerRequest` over data copied out of uWebSockets.js: what HttpApiBuilder's handlers read
 * (headers, the client's address, the body as text, JSON, bytes, a stream or multipart parts).
 */
export class UwsServerRequest extends Inspectable.Class implements HttpServerRequest.HttpServerRequest {
  readonly [HttpServerRequest.TypeId]: HttpServerRequest.TypeId = HttpServerRequest.TypeId
  readonly [HttpIncomingMessage.TypeId]: HttpIncomingMessage.TypeId = HttpIncomingMessage.TypeId

  constructor(
    readonly source: Head,
    readonly body: Body,
    readonly url: string = source.url,
    private readonly headersOverride?: Headers.Headers,
    private readonly remoteAddressOverride?: string
  ) {
    super()
  }

  toJSON(): unknown {
    return HttpIncomingMessage.inspect(this, { _id: "@effect/platform/HttpServerRequest", method: this.method, url: this.originalUrl })
  }

  modify(options: { readonly url?: string; readonly headers?: Headers.Headers; readonly remoteAddress?: string }) {
    return new UwsServerRequest(
      this.source,
      this.body,
      options.url ?? this.url,
      options.headers ?? this.headersOverride,
      options.remoteAddress ?? this.remoteAddressOverride
    )
  }

  get method(): HttpMethod {
    return this.source.method
  }

  get originalUrl(): string {
    return this.source.url
  }

  get headers(): Headers.Headers {
    return this.headersOverride ?? this.source.headers
  }

  get remoteAddress(): Option.Option<string> {
    return Option.some(this.remoteAddressOverride ?? this.source.remoteAddress)
  }

  private cachedCookies: Record<string, string> | undefined
  get cookies(): Record<string, string> {
    return this.cachedCookies ??= Cookies.parseHeader(this.headers.cookie ?? "")
  }

  private failure(description: string, cause?: unknown) {
    return new HttpServerError.RequestError({ request: this, reason: "Decode", description, cause })
  }

  get stream(): Stream.Stream<Uint8Array, HttpServerError.RequestError> {
    const body = this.body
    switch (body._tag) {
      case "None":
        return Stream.fail(this.failure("can not create stream from empty body"))
      case "Whole":
        return Stream.succeed(body.bytes)
      case "Streaming":
        return Stream.fromReadableStream(() => body.stream, (cause) => this.failure("the body could not be read", cause))
    }
  }

  private bytesEffect: Effect.Effect<Uint8Array, HttpServerError.RequestError> | undefined
  private get bytes(): Effect.Effect<Uint8Array, HttpServerError.RequestError> {
    if (this.bytesEffect !== undefined) return this.bytesEffect
    const body = this.body
    this.bytesEffect = body._tag === "None"
      ? Effect.succeed(new Uint8Array(0))
      : body._tag === "Whole"
      ? Effect.succeed(body.bytes)
      : Effect.runSync(Effect.cached(Effect.tryPromise({
        try: () => new Response(body.stream).arrayBuffer().then((buffer) => new Uint8Array(buffer)),
        catch: (cause) => this.failure("the body could not be read", cause)
      })))
    return this.bytesEffect
  }

  private textEffect: Effect.Effect<string, HttpServerError.RequestError> | undefined
  get text(): Effect.Effect<string, HttpServerError.RequestError> {
    return this.textEffect ??= Effect.runSync(Effect.cached(Effect.map(this.bytes, (bytes) => decoder.decode(bytes))))
  }

  get json(): Effect.Effect<unknown, HttpServerError.RequestError> {
    return Effect.tryMap(this.text, {
      try: (text) => JSON.parse(text) as unknown,
      catch: (cause) => this.failure("the body is not JSON", cause)
    })
  }

  get urlParamsBody(): Effect.Effect<UrlParams.UrlParams, HttpServerError.RequestError> {
    return Effect.flatMap(this.text, (text) =>
      Effect.try({
        try: () => UrlParams.fromInput(new URLSearchParams(text)),
        catch: (cause) => this.failure("the body is not URL-encoded", cause)
      }))
  }

  get arrayBuffer(): Effect.Effect<ArrayBuffer, HttpServerError.RequestError> {
    return Effect.map(this.bytes, (bytes) => bytes.slice().buffer)
  }

  get multipartStream(): Stream.Stream<Multipart.Part, Multipart.MultipartError> {
    return MultipartParts.parts(
      this.headers,
      Stream.mapError(this.stream, (cause) => new Multipart.MultipartError({ reason: "InternalError", cause }))
    )
  }

  private multipartEffect: HttpServerRequest.HttpServerRequest["multipart"] | undefined
  get multipart(): HttpServerRequest.HttpServerRequest["multipart"] {
    return this.multipartEffect ??= Effect.runSync(Effect.cached(Multipart.toPersisted(this.multipartStream)))
  }

  /** WebSocket upgrades are the listener's (`/ws`), never an HTTP route's. */
  get upgrade(): HttpServerRequest.HttpServerRequest["upgrade"] {
    return Effect.fail(this.failure("Not an upgradeable ServerRequest"))
  }
}
