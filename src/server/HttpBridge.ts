import { STATUS_CODES } from "node:http"
import { internalError } from "../http/Middleware.js"
import { type GuardState, guarded, guardedCallback, Refusal, refuseOverloaded, refuseRepeatedLength, thrown } from "./Guards.js"
import type { InFlight } from "./InFlight.js"
import type { HttpRequest, HttpResponse, TemplatedApp } from "./Uws.js"

export type WebHandler = (request: Request, peer: string) => Promise<Response>

const skipped = new Set(["content-length", "transfer-encoding", "connection"])

/**
 * Serves every plain HTTP request on the uWS app through a web handler (the
 * HttpApi app), so REST and docs share the WebSocket port. uWS request data
 * is only valid during the callback: everything is copied before awaiting.
 */
export const serveHttp = (
  app: TemplatedApp,
  handler: WebHandler,
  options: {
    readonly maxBodyBytes: number
    /** Shared with the routes served on uWS directly: one limit for all REST requests. */
    readonly inFlight: InFlight
    /**
     * The routes whose request bodies stream to the handler as they arrive (uploads), with their
     * own size cap; every other body is read whole first, up to `maxBodyBytes`.
     */
    readonly streamedBody?: (method: string, path: string) => number | undefined
    /** Told of a throw the last-resort guard caught (one line to log). */
    readonly onThrow?: (error: unknown) => void
    /**
     * How long a download may make no progress (the client reads nothing) before it is cut, as nginx's
     * `send_timeout`; uWS alone cuts a stalled response after 10 s.
     */
    readonly sendTimeoutMs?: number
  }
) => {
  const sendTimeoutMs = options.sendTimeoutMs ?? 60_000
  // uWS closes a response whose write waits for 10 s; offering the waiting bytes again restarts that clock.
  const keepAliveMs = Math.min(4000, Math.max(100, sendTimeoutMs / 2))
  // Beyond this many requests in flight, new ones are refused at once (503) rather than queued without
  // bound behind the database pool: overload sheds load, it does not pile up or bring the process down.
  return app.any("/*", guarded(options.onThrow, (res: HttpResponse, req: HttpRequest, state: GuardState) => {
    const method = req.getCaseSensitiveMethod().toUpperCase()
    const query = req.getQuery()
    const url = `http://localhost${req.getUrl()}${query ? `?${query}` : ""}`
    const headers = new Headers()
    let lengths = 0
    req.forEach((key, value) => {
      if (key === "content-length") lengths++
      headers.append(key, value)
    })
    // Two lengths make the body's end ambiguous (request smuggling behind a proxy): RFC 9112 §6.3.
    if (lengths > 1) return refuseRepeatedLength(res)
    const peer = Buffer.from(res.getRemoteAddressAsText()).toString()
    if (!options.inFlight.tryAcquire()) {
      refuseOverloaded(res, options.inFlight)
      return
    }
    let released = false
    const release = () => {
      if (!released) {
        released = true
        options.inFlight.release()
      }
    }
    state.release = release
    let done = false
    /** A throw in a later callback of this request: answered as the guard would, never passed to uWS. */
    const crash = (error: unknown) => {
      release()
      options.onThrow?.(error)
      if (done) return
      done = true
      try {
        res.cork(() => res.writeStatus("500 Internal Server Error").writeHeader("content-type", "application/json").end(thrown, true))
      } catch {
        // Gone already.
      }
    }
    let aborted = false
    let dispatched = false
    const onAbort: Array<() => void> = []
    // A client that goes away does not interrupt its request: requests are short, and interrupting one
    // cancels its statement by backend id, which can hit another statement that reused the connection.
    res.onAborted(() => {
      done = true
      aborted = true
      state.aborted = true
      for (const hook of onAbort) hook()
      // A body still being read never reaches the handler: its slot is free now.
      if (!dispatched) release()
    })

    const respond = async (response: Response) => {
      const reader = response.body?.getReader()
      const first = reader === undefined ? undefined : await reader.read()
      const second = first === undefined || first.done ? undefined : await reader!.read()
      if (second === undefined || second.done) {
        // One chunk or none: the usual answer, written at once.
        release()
        if (done) return
        done = true
        res.cork(() => {
          writeHead(response)
          res.end(first?.value ?? "")
        })
        return
      }
      await streamBody(response, reader!, [first!.value!, second.value])
    }

    const writeHead = (response: Response) => {
      res.writeStatus(`${response.status} ${STATUS_CODES[response.status] ?? ""}`)
      response.headers.forEach((value, key) => {
        if (!skipped.has(key)) res.writeHeader(key, value)
      })
    }

    /**
     * A body of many chunks (a download) goes out as it is read, at the pace the client takes it:
     * with its Content-Length when the handler gave one, chunked otherwise.
     */
    const streamBody = async (
      response: Response,
      reader: ReadableStreamDefaultReader<Uint8Array>,
      firstChunks: Array<Uint8Array>
    ) => {
      const declared = Number(response.headers.get("content-length") ?? Number.NaN)
      const total = Number.isSafeInteger(declared) && declared >= 0 ? declared : undefined
      // Set while uWS holds more than it could send: called with the socket's write offset once it drained.
      let onDrained: ((offset: number) => boolean) | undefined
      res.onWritable((offset) => onDrained === undefined ? true : onDrained(offset))
      let wakeOnAbort: (() => void) | undefined
      onAbort.push(() => wakeOnAbort?.())
      /** Writes one chunk; resolves once uWS took all of it (or the client went away, or took nothing for too long). */
      const send = (chunk: Uint8Array) =>
        new Promise<void>((resolve) => {
          let ticker: NodeJS.Timeout | undefined
          const settle = () => {
            onDrained = undefined
            wakeOnAbort = undefined
            if (ticker !== undefined) clearInterval(ticker)
            resolve()
          }
          if (total === undefined) {
            // Chunked: uWS keeps the whole chunk, so waiting for the drain is enough.
            let ok = true
            res.cork(() => (ok = res.write(chunk)))
            if (ok) return settle()
            onDrained = () => (settle(), true)
          } else {
            // With a length: uWS may take part of the chunk; the rest is offered again from where it stopped.
            const start = res.getWriteOffset()
            let ok = false
            res.cork(() => {
              const [written, finished] = res.tryEnd(chunk, total)
              ok = written || finished
              if (finished) done = true
            })
            if (ok) return settle()
            onDrained = (offset) => {
              const [written, finished] = res.tryEnd(chunk.subarray(offset - start), total)
              if (finished) done = true
              if (written || finished) settle()
              return written
            }
            // A client that stops reading for a while (a phone in a tunnel) keeps its download while any byte
            // moved within the send timeout: the waiting bytes are offered again now and then, which restarts
            // uWS's own 10 s clock; with no progress for the send timeout, the download is cut.
            let progressAt = Date.now()
            let progressOffset = res.getWriteOffset()
            ticker = setInterval(() => {
              if (done || onDrained === undefined) return settle()
              const offset = res.getWriteOffset()
              if (offset !== progressOffset) {
                progressOffset = offset
                progressAt = Date.now()
              } else if (Date.now() - progressAt >= sendTimeoutMs) {
                done = true
                res.close()
                return settle()
              }
              const retry = onDrained
              res.cork(() => void retry(offset))
            }, keepAliveMs)
          }
          wakeOnAbort = settle
        })
      try {
        if (done) return
        res.cork(() => writeHead(response))
        const pending = [...firstChunks]
        while (!done) {
          const chunk = pending.shift() ?? await reader.read().then((next) => next.done ? undefined : next.value)
          if (done) break
          if (chunk === undefined) {
            done = true
            // Shorter than its announced length: cut the connection rather than let it pass as whole.
            if (total === undefined) res.cork(() => res.end())
            else res.close()
            break
          }
          await send(chunk)
        }
      } catch {
        // The body failed half-way (storage went away): the client must not take a cut file for a whole one.
        if (!done) {
          done = true
          res.close()
        }
      } finally {
        release()
        void reader.cancel().catch(() => undefined)
      }
    }

    const dispatch = (body: Uint8Array | ReadableStream<Uint8Array> | undefined) => {
      dispatched = true
      // A streamed body needs `duplex: "half"` (Node's fetch), which the DOM typings do not know yet.
      const init: RequestInit & { duplex?: "half" } = body === undefined
        ? { method, headers }
        : { method, headers, body, duplex: "half" }
      let answer: Promise<Response>
      try {
        answer = handler(new Request(url, init), peer)
      } catch (error) {
        answer = Promise.reject(error)
      }
      return answer
        .then(respond)
        .catch((error: unknown) => {
          options.onThrow?.(error)
          release()
          if (done) return
          done = true
          res.cork(() => {
            res.writeStatus("500 Internal Server Error").writeHeader("content-type", "application/json")
              .end(JSON.stringify(internalError))
          })
        })
    }

    if (method === "GET" || method === "HEAD" || method === "OPTIONS") {
      void dispatch(undefined)
      return
    }
    const streamedLimit = options.streamedBody?.(method, req.getUrl())
    const limit = streamedLimit ?? options.maxBodyBytes
    const declared = headers.get("content-length")
    const declaredLength = declared === null ? undefined : Number(declared)
    let refusal: Refusal | undefined
    /** Beyond the limit: the slot is free at once, the rest of the body is drained, then 413. */
    const tooLarge = (received: number, finished: boolean) => {
      done = true
      release()
      refusal = new Refusal(res, limit, () => aborted)
      refusal.start(declaredLength === undefined ? undefined : declaredLength - received, finished)
    }
    if (declaredLength !== undefined && declaredLength > limit) {
      tooLarge(0, false)
      res.onData(guardedCallback(crash, undefined, (chunk: ArrayBuffer, isLast: boolean) => refusal?.chunk(chunk.byteLength, isLast)))
      return
    }
    if (streamedLimit !== undefined) {
      streamRequestBody(res, limit, {
        isDone: () => done,
        refusal: () => refusal,
        onAbort: (hook) => void onAbort.push(hook),
        tooLarge,
        crash,
        dispatch: (body) => void dispatch(body)
      })
      return
    }
    const chunks: Array<Buffer> = []
    let size = 0
    res.onData(guardedCallback(crash, undefined, (chunk: ArrayBuffer, isLast: boolean) => {
      if (refusal !== undefined) return refusal.chunk(chunk.byteLength, isLast)
      if (done) return
      size += chunk.byteLength
      if (size > limit) return tooLarge(size, isLast)
      // The chunk is neutered after this callback: copy it.
      chunks.push(Buffer.from(new Uint8Array(chunk.slice(0))))
      if (isLast) void dispatch(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks))
    }))
  }))
}

/**
 * Hands the handler a body that streams as uWS receives it: the handler gets the request at once,
 * and uWS stops reading from the socket while the handler has not taken what is buffered.
 */
const streamRequestBody = (
  res: HttpResponse,
  limit: number,
  hooks: {
    readonly isDone: () => boolean
    readonly refusal: () => Refusal | undefined
    readonly onAbort: (fail: () => void) => void
    readonly tooLarge: (received: number, finished: boolean) => void
    readonly crash: (error: unknown) => void
    readonly dispatch: (body: ReadableStream<Uint8Array>) => void
  }
) => {
  let size = 0
  let paused = false
  let closed = false
  let controller: ReadableStreamDefaultController<Uint8Array> | undefined
  const fail = (reason: string) => {
    if (closed) return
    closed = true
    controller?.error(new Error(reason))
  }
  const body = new ReadableStream<Uint8Array>({
    start: (c) => void (controller = c),
    pull: () => {
      if (paused && !hooks.isDone()) {
        paused = false
        res.resume()
      }
    },
    // The handler stopped reading (it answered already): the rest is read and dropped.
    cancel: () => {
      closed = true
      if (paused && !hooks.isDone()) {
        paused = false
        res.resume()
      }
    }
  }, { highWaterMark: 8 })
  hooks.onAbort(() => fail("The client went away during the upload"))
  res.onData(guardedCallback(hooks.crash, undefined, (chunk: ArrayBuffer, isLast: boolean) => {
    const refusal = hooks.refusal()
    if (refusal !== undefined) return refusal.chunk(chunk.byteLength, isLast)
    if (hooks.isDone() || closed) return
    size += chunk.byteLength
    if (size > limit) {
      fail("The request body is too large")
      return hooks.tooLarge(size, isLast)
    }
    // The chunk is neutered after this callback: copy it (uWS may end with an empty one: nothing to pass on).
    if (chunk.byteLength > 0) controller!.enqueue(new Uint8Array(chunk.slice(0)))
    if (isLast) {
      closed = true
      controller!.close()
    } else if ((controller!.desiredSize ?? 1) <= 0 && !paused) {
      paused = true
      res.pause()
    }
  }))
  hooks.dispatch(body)
}
