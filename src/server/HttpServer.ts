import * as Headers from "@effect/platform/Headers"
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerError from "@effect/platform/HttpServerError"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import type { HttpMethod } from "@effect/platform/HttpMethod"
import { Effect, type Fiber, FiberSet } from "effect"
import { readBody } from "./Body.js"
import { admit, type GuardState, guarded, refusedAtHead, refuseRepeatedLength } from "./Guards.js"
import type { InFlight } from "./InFlight.js"
import { noBody, UwsServerRequest } from "./Request.js"
import * as Response from "./Response.js"
import type { HttpRequest, HttpResponse, TemplatedApp } from "./Uws.js"

export interface Options {
  /** Bodies are read whole, up to this, before the app runs (beyond: 413 once the rest was drained). */
  readonly maxBodyBytes: number
  /** The routes whose bodies stream to the app as they arrive (uploads), with their own size cap. */
  readonly streamedBody?: (method: string, path: string) => number | undefined
  /** Requests worked on at once, shared with every HTTP door of the listener: beyond, 503 at once. */
  readonly inFlight: InFlight
  /** A response that moves no byte for this long is cut (see `Response.WriteOptions`). */
  readonly sendTimeoutMs: number
  /** Told of a throw the last-resort guard caught (one line to log). */
  readonly onThrow?: (error: unknown) => void
}

/** One request on its way through the app: its uWS response, its fiber, its in-flight slot. */
interface Request extends Response.Exchange {
  fiber: Fiber.RuntimeFiber<void> | undefined
  /** The answer is being streamed: a client that goes away interrupts the fiber. */
  writing: boolean
  /** Holds an in-flight slot (from the moment the app takes it until its fiber ends). */
  held: boolean
  release: () => void
}

const exchangeOf = new WeakMap<object, Request>()

/**
 * uWebSockets.js as an `@effect/platform` `HttpServer`: `HttpServer.serve` / `HttpApiBuilder.serve()` run an
 * HttpApp on every request the app's other routes (`/ws`, the fast routes) do not take.
 *
 * A request's method, URL, headers and address are copied out during uWS's callback (its objects die with
 * it); its body is read whole first (bounded) or streamed with backpressure (uploads); then the app runs in a
 * fiber of the server's `FiberSet` and its answer is written corked, a streamed one at the pace the client
 * reads it. What the guards refuse (over the in-flight limit, too large, a repeated Content-Length, shutting
 * down: `options.inFlight.accepting` false) never reaches a fiber.
 *
 * A client that goes away interrupts what waits on it: the body it was sending fails, the answer being
 * streamed to it stops (its fiber is interrupted). The handler's own work runs to its end, its answer
 * dropped: cancelling a statement by backend id can hit the next statement of a reused connection, and a
 * send cut between its commit and its publish would leave its room unannounced.
 */
export const make = (app: TemplatedApp, address: HttpServer.Address, options: Options): HttpServer.HttpServer => {
  const { inFlight, onThrow } = options
  const writeOptions: Response.WriteOptions = { sendTimeoutMs: options.sendTimeoutMs }

  const respond = (request: HttpServerRequest.HttpServerRequest, response: Parameters<typeof Response.write>[2]) =>
    Effect.suspend(() => {
      const exchange = exchangeOf.get((request as UwsServerRequest).source)
      if (exchange === undefined) return Effect.void
      exchange.writing = true
      return Response.write(exchange, request.method, response, writeOptions)
    })

  const serve = (httpApp: HttpApp.Default<unknown>, middleware?: Parameters<typeof HttpApp.toHandled>[2]) =>
    Effect.gen(function*() {
      const handled = HttpApp.toHandled(httpApp, respond, middleware)
      const runFork = yield* FiberSet.makeRuntime<never, void, never>()

      /**
       * The app takes the request: only now does it hold an in-flight slot (or is refused), so that clients
       * that send a head and then dribble their bodies hold nothing but their connections (which uWS cuts).
       */
      const start = (exchange: Request, request: UwsServerRequest) => {
        if (!admit(exchange.res, inFlight)) return void (exchange.done = true)
        exchange.held = true
        exchange.fiber = runFork(Effect.provideService(handled, HttpServerRequest.HttpServerRequest, request))
        exchange.fiber.addObserver(() => {
          exchange.release()
          // The app ended without an answer (a defect past every handler): nothing may hang.
          Response.fail(exchange, exchange.writing)
        })
      }

      app.any("/*", guarded(onThrow, (res: HttpResponse, req: HttpRequest, state: GuardState) => {
        const method = req.getCaseSensitiveMethod().toUpperCase() as HttpMethod
        const query = req.getQuery()
        const path = req.getUrl()
        const record: Record<string, string> = {}
        let lengths = 0
        req.forEach((key, value) => {
          if (key === "content-length") lengths++
          const seen = record[key]
          record[key] = seen === undefined ? value : `${seen}, ${value}`
        })
        // Two lengths make the body's end ambiguous (request smuggling behind a proxy): RFC 9112 §6.3.
        if (lengths > 1) return refuseRepeatedLength(res)
        if (refusedAtHead(res, inFlight)) return

        const exchange: Request = {
          res,
          done: false,
          aborted: false,
          fiber: undefined,
          writing: false,
          held: false,
          release: () => {
            if (!exchange.held) return
            exchange.held = false
            inFlight.release()
          }
        }
        state.release = exchange.release
        const onAbort: Array<() => void> = []
        res.onAborted(() => {
          exchange.done = true
          exchange.aborted = true
          state.aborted = true
          for (const hook of onAbort) hook()
          if (exchange.writing && exchange.fiber !== undefined) exchange.fiber.unsafeInterruptAsFork(HttpServerError.clientAbortFiberId)
        })
        const head = {
          method,
          url: query ? `${path}?${query}` : path,
          headers: Headers.unsafeFromRecord(record),
          remoteAddress: Buffer.from(res.getRemoteAddressAsText()).toString()
        }
        exchangeOf.set(head, exchange)

        if (method === "GET" || method === "HEAD" || method === "OPTIONS") return start(exchange, new UwsServerRequest(head, noBody))
        const streamedLimit = options.streamedBody?.(method, path)
        const declared = record["content-length"]
        readBody(res, {
          limit: streamedLimit ?? options.maxBodyBytes,
          declaredLength: declared === undefined ? undefined : Number(declared),
          streamed: streamedLimit !== undefined,
          onBody: (bytes) => start(exchange, new UwsServerRequest(head, { _tag: "Whole", bytes: bytes.slice() })),
          onStream: (stream) => start(exchange, new UwsServerRequest(head, { _tag: "Streaming", stream }))
        }, {
          isDone: () => exchange.done,
          gone: () => exchange.aborted,
          onTooLarge: () => {
            exchange.done = true
            exchange.release()
            inFlight.onRefused(413, "body_too_large")
          },
          onAbort: (hook) => void onAbort.push(hook),
          crash: (error) => {
            exchange.release()
            onThrow?.(error)
            Response.fail(exchange, false)
          }
        })
      }))
    })

  return HttpServer.make({ address, serve })
}
