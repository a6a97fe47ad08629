import { STATUS_CODES } from "node:http"
import type { HttpRequest, HttpResponse, TemplatedApp } from "./Uws.js"

export type WebHandler = (request: Request, peer: string) => Promise<Response>

const tooLarge = (max: number) =>
  JSON.stringify({ _tag: "PayloadTooLarge", message: `The request body exceeds ${max} bytes` })

const skipped = new Set(["content-length", "transfer-encoding", "connection"])

const overloaded = JSON.stringify({ _tag: "Overloaded", message: "The server is busy: retry in a moment" })

/**
 * Serves every plain HTTP request on the uWS app through a web handler (the
 * HttpApi app), so REST and docs share the WebSocket port. uWS request data
 * is only valid during the callback: everything is copied before awaiting.
 */
export const serveHttp = (
  app: TemplatedApp,
  handler: WebHandler,
  options: { readonly maxBodyBytes: number; readonly maxInFlight: number }
) => {
  // Beyond this many requests in flight, new ones are refused at once (503) rather than queued without
  // bound behind the database pool: overload sheds load, it does not pile up or bring the process down.
  let inFlight = 0
  return app.any("/*", (res: HttpResponse, req: HttpRequest) => {
    const method = req.getCaseSensitiveMethod().toUpperCase()
    const query = req.getQuery()
    const url = `http://localhost${req.getUrl()}${query ? `?${query}` : ""}`
    const headers = new Headers()
    req.forEach((key, value) => headers.append(key, value))
    const peer = Buffer.from(res.getRemoteAddressAsText()).toString()
    if (inFlight >= options.maxInFlight) {
      res.writeStatus("503 Service Unavailable").writeHeader("content-type", "application/json")
        .writeHeader("retry-after", "1").end(overloaded)
      return
    }
    inFlight++
    let released = false
    const release = () => {
      if (!released) {
        released = true
        inFlight--
      }
    }
    let done = false
    let dispatched = false
    // A client that goes away does not interrupt its request: requests are short, and interrupting one
    // cancels its statement by backend id, which can hit another statement that reused the connection.
    res.onAborted(() => {
      done = true
      // A body still being read never reaches the handler: its slot is free now.
      if (!dispatched) release()
    })

    const respond = (response: Response) =>
      response.arrayBuffer().then((body) => {
        release()
        if (done) return
        done = true
        res.cork(() => {
          res.writeStatus(`${response.status} ${STATUS_CODES[response.status] ?? ""}`)
          response.headers.forEach((value, key) => {
            if (!skipped.has(key)) res.writeHeader(key, value)
          })
          res.end(body)
        })
      })

    const dispatch = (body: Uint8Array | undefined) => {
      dispatched = true
      return handler(new Request(url, { method, headers, ...(body === undefined ? {} : { body }) }), peer)
        .then(respond)
        .catch(() => {
          release()
          if (done) return
          done = true
          res.cork(() => {
            res.writeStatus("500 Internal Server Error").writeHeader("content-type", "application/json")
              .end(JSON.stringify({ _tag: "InternalServerError", message: "Something went wrong on our side" }))
          })
        })
    }

    if (method === "GET" || method === "HEAD" || method === "OPTIONS") {
      void dispatch(undefined)
      return
    }
    if (Number(headers.get("content-length") ?? 0) > options.maxBodyBytes) {
      done = true
      release()
      res.writeStatus("413 Payload Too Large").writeHeader("content-type", "application/json")
        .end(tooLarge(options.maxBodyBytes), true)
      return
    }
    const chunks: Array<Buffer> = []
    let size = 0
    res.onData((chunk, isLast) => {
      if (done) return
      size += chunk.byteLength
      if (size > options.maxBodyBytes) {
        done = true
        release()
        res.cork(() => {
          res.writeStatus("413 Payload Too Large").writeHeader("content-type", "application/json")
            .end(tooLarge(options.maxBodyBytes), true)
        })
        return
      }
      // The chunk is neutered after this callback: copy it.
      chunks.push(Buffer.from(new Uint8Array(chunk.slice(0))))
      if (isLast) void dispatch(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks))
    })
  })
}
