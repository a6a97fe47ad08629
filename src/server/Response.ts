import * as Cookies from "@effect/platform/Cookies"
import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Chunk, Effect, Stream } from "effect"
import { STATUS_CODES } from "node:http"
import { internalError } from "../http/Middleware.js"
import type { HttpResponse } from "./Uws.js"

/** One request's uWS response and what became of it. uWS's response must not be touched once it is done. */
export interface Exchange {
  readonly res: HttpResponse
  /** The answer was written whole, cut, or the client went away. */
  done: boolean
  /** The client went away (uWS's onAborted). */
  aborted: boolean
}

export interface WriteOptions {
  /**
   * How long a response (a download) may move no byte before it is cut, as nginx's `send_timeout`; uWS alone
   * cuts a stalled response after 10 s.
   */
  readonly sendTimeoutMs: number
}

// uWS writes the length and the framing itself; a handler's own would repeat them.
const skipped = new Set(["content-length", "transfer-encoding", "connection"])

const writeHead = (res: HttpResponse, response: HttpServerResponse.HttpServerResponse) => {
  res.writeStatus(`${response.status} ${response.statusText ?? STATUS_CODES[response.status] ?? ""}`)
  const headers = response.headers
  for (const key in headers) {
    if (!skipped.has(key)) res.writeHeader(key, headers[key]!)
  }
  if (!Cookies.isEmpty(response.cookies)) {
    for (const cookie of Cookies.toSetCookieHeaders(response.cookies)) res.writeHeader("set-cookie", cookie)
  }
}

const thrown = JSON.stringify(internalError)

/** A 500 when nothing was written yet; otherwise the connection is cut (a half answer must not pass as whole). */
export const fail = (exchange: Exchange, headWritten: boolean) => {
  if (exchange.done) return
  exchange.done = true
  if (headWritten) return void exchange.res.close()
  exchange.res.cork(() =>
    exchange.res.writeStatus("500 Internal Server Error").writeHeader("content-type", "application/json").end(thrown, true)
  )
}

/** The whole answer in one corked write (uWS adds Content-Length). */
const writeWhole = (exchange: Exchange, response: HttpServerResponse.HttpServerResponse, body: string | Uint8Array) =>
  Effect.sync(() => {
    if (exchange.done) return
    exchange.done = true
    exchange.res.cork(() => {
      writeHead(exchange.res, response)
      exchange.res.end(body)
    })
  })

/**
 * The head alone, with `length` as its Content-Length when given (a HEAD's: the GET's). Written as a header:
 * uWS closes the connection after `endWithoutBody(length)`.
 */
const writeWithoutBody = (exchange: Exchange, response: HttpServerResponse.HttpServerResponse, length?: string) =>
  Effect.sync(() => {
    if (exchange.done) return
    exchange.done = true
    exchange.res.cork(() => {
      writeHead(exchange.res, response)
      if (length !== undefined) exchange.res.writeHeader("content-length", length)
      exchange.res.endWithoutBody()
    })
  })

/**
 * Writes an HttpApp's answer to uWS: a body held in memory in one corked write with its Content-Length, a
 * streamed one (a download) at the pace the client reads it. Never fails: what cannot be written is cut.
 */
export const write = (
  exchange: Exchange,
  method: string,
  response: HttpServerResponse.HttpServerResponse,
  options: WriteOptions
): Effect.Effect<void> => {
  if (exchange.done) return Effect.void
  // No body and no Content-Length at all on a 204 or 304 (RFC 9110 §8.6: never on a 204; a 304's would be the GET's).
  if (response.status === 204 || response.status === 304) return writeWithoutBody(exchange, response)
  if (method === "HEAD") return writeWithoutBody(exchange, response, response.headers["content-length"])
  const body = response.body
  switch (body._tag) {
    case "Empty":
      return writeWhole(exchange, response, "")
    case "Uint8Array":
      return writeWhole(exchange, response, body.body)
    case "Raw": {
      const raw = body.body
      if (typeof raw === "string" || raw instanceof Uint8Array) return writeWhole(exchange, response, raw)
      if (raw instanceof ArrayBuffer) return writeWhole(exchange, response, new Uint8Array(raw))
      if (raw instanceof ReadableStream) return writeStream(exchange, response, Stream.fromReadableStream(() => raw, (e) => e), options)
      return Effect.sync(() => fail(exchange, false))
    }
    case "FormData": {
      const web = new Response(body.formData)
      const type = web.headers.get("content-type")
      const withType = { ...response, headers: { ...response.headers, ...(type === null ? {} : { "content-type": type }) } }
      return writeStream(
        exchange,
        withType as HttpServerResponse.HttpServerResponse,
        Stream.fromReadableStream(() => web.body!, (e) => e),
        options
      )
    }
    case "Stream":
      return writeStream(exchange, response, body.stream, options)
  }
}

/**
 * A body of many chunks goes out as it is read, at the pace the client takes it: with its Content-Length when
 * the handler gave one (uWS may take part of a chunk; the rest is offered again once the socket drained),
 * chunked otherwise. The head waits for the first chunk, so a body that fails at once is still a clean 500.
 * Interruptible: a client that goes away interrupts the request's fiber, which ends the copy here.
 */
const writeStream = (
  exchange: Exchange,
  response: HttpServerResponse.HttpServerResponse,
  stream: Stream.Stream<Uint8Array, unknown>,
  options: WriteOptions
): Effect.Effect<void> => {
  const { res } = exchange
  const declared = Number(response.headers["content-length"] ?? Number.NaN)
  const total = Number.isSafeInteger(declared) && declared >= 0 ? declared : undefined
  // uWS closes a response whose write waits for 10 s; offering the waiting bytes again restarts that clock.
  const keepAliveMs = Math.min(4000, Math.max(100, options.sendTimeoutMs / 2))
  let headWritten = false
  // Set while uWS holds more than it could send: called with the socket's write offset once it drained.
  let onDrained: ((offset: number) => boolean) | undefined

  const head = () => {
    if (headWritten) return
    headWritten = true
    res.onWritable((offset) => onDrained === undefined ? true : onDrained(offset))
    res.cork(() => writeHead(res, response))
  }

  /** Writes one chunk; resumes once uWS took all of it, or the client took nothing for the send timeout. */
  const send = (chunk: Uint8Array) =>
    Effect.async<void>((resume) => {
      if (exchange.done) return resume(Effect.void)
      head()
      let ticker: NodeJS.Timeout | undefined
      const settle = () => {
        onDrained = undefined
        if (ticker !== undefined) clearInterval(ticker)
        resume(Effect.void)
      }
      if (total === undefined) {
        // Chunked: uWS keeps the whole chunk, so waiting for the drain is enough.
        let ok = true
        res.cork(() => (ok = res.write(chunk)))
        if (ok) return settle()
        onDrained = () => (settle(), true)
        return Effect.sync(() => void (onDrained = undefined))
      }
      const start = res.getWriteOffset()
      let ok = false
      res.cork(() => {
        const [written, finished] = res.tryEnd(chunk, total)
        ok = written || finished
        if (finished) exchange.done = true
      })
      if (ok) return settle()
      onDrained = (offset) => {
        const [written, finished] = res.tryEnd(chunk.subarray(offset - start), total)
        if (finished) exchange.done = true
        if (written || finished) settle()
        return written
      }
      // A client that stops reading for a while (a phone in a tunnel) keeps its download while any byte moved
      // within the send timeout: the waiting bytes are offered again now and then, which restarts uWS's own
      // 10 s clock; with no progress for the send timeout, the download is cut.
      let progressAt = Date.now()
      let progressOffset = res.getWriteOffset()
      ticker = setInterval(() => {
        if (exchange.done || onDrained === undefined) return settle()
        const offset = res.getWriteOffset()
        if (offset !== progressOffset) {
          progressOffset = offset
          progressAt = Date.now()
        } else if (Date.now() - progressAt >= options.sendTimeoutMs) {
          exchange.done = true
          res.close()
          return settle()
        }
        const retry = onDrained
        res.cork(() => void retry(offset))
      }, keepAliveMs)
      return Effect.sync(() => {
        onDrained = undefined
        clearInterval(ticker)
      })
    })

  return stream.pipe(
    Stream.runForEachChunk((chunk) => Effect.forEach(Chunk.toReadonlyArray(chunk), (bytes) => bytes.length === 0 ? Effect.void : send(bytes), { discard: true })),
    Effect.matchCause({
      onFailure: () => fail(exchange, headWritten),
      onSuccess: () => {
        if (exchange.done) return
        exchange.done = true
        if (!headWritten) {
          // No byte at all: an empty body, with the length the handler announced (0) when it matches.
          if (total === undefined || total === 0) res.cork(() => (writeHead(res, response), res.end()))
          else res.close()
        } else if (total === undefined) res.cork(() => res.end())
        // Shorter than its announced length: cut the connection rather than let it pass as whole.
        else res.close()
      }
    }),
    Effect.interruptible
  )
}
