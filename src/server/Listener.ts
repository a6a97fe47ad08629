import * as HttpServer from "@effect/platform/HttpServer"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { Config, Context, Duration, Effect, FiberSet, Layer } from "effect"
import { AttachmentsConfig, uploadBodyCap } from "../domain/attachments/Attachments.js"
import { uploadPath } from "../http/attachments/Api.js"
import { HttpConfig, ServeLive } from "../http/Server.js"
import * as WsDoor from "../ws/Door.js"
import { serveFastRoutes } from "./FastRoutes.js"
import { describeThrow } from "./Guards.js"
import * as UwsHttpServer from "./HttpServer.js"
import { Metrics } from "../domain/ports/Metrics.js"
import { InFlight } from "./InFlight.js"
import * as Uws from "./Uws.js"

export const ListenerConfig = Config.all({
  shutdownGraceMs: Config.integer("SHUTDOWN_GRACE_MS").pipe(Config.withDefault(10_000)),
  /** REST requests being worked on at once; beyond, new ones are refused with 503. */
  httpMaxInFlight: Config.integer("HTTP_MAX_IN_FLIGHT").pipe(Config.withDefault(512)),
  /** Send and history pages served on uWS directly (see FastRoutes); off, they take the HttpApp like the rest. */
  httpFastRoutes: Config.boolean("HTTP_FAST_ROUTES").pipe(Config.withDefault(true))
})

/** The one listener on `PORT`: the WebSocket endpoint `/ws`, and REST and docs through the HTTP app. */
export class Listener extends Context.Tag("Server/Listener")<Listener, {
  readonly port: number
  /** WebSocket connections open on this instance. */
  readonly connections: () => number
}>() {}

export const layer = Layer.scoped(
  Listener,
  Effect.gen(function*() {
    const uws = yield* Uws.load
    const http = yield* HttpConfig
    const config = yield* ListenerConfig
    const uploads = yield* AttachmentsConfig
    const scope = yield* Effect.scope
    const app = uws.App()

    // ---- routes: /ws, the two fast REST routes, everything else to the HttpApp --------------------

    // /ws: the WebSocket door (ws/Door.ts lists each client event and its handler, events/<name>.ts).
    const ws = yield* WsDoor.mount(app)

    // One limit for every REST request, whichever door answers it.
    const inFlight = new InFlight(config.httpMaxInFlight)
    const metrics = yield* Metrics
    inFlight.onRefused = metrics.httpRefused
    const fibers = yield* FiberSet.make<unknown, unknown>()
    const run = yield* FiberSet.runtime(fibers)<never>()
    const onThrow = (error: unknown) => void run(Effect.logError(`HTTP handler threw: ${describeThrow(error)}`))
    if (config.httpFastRoutes) {
      yield* serveFastRoutes(app, { fibers, inFlight, maxBodyBytes: http.maxBodyBytes, frontendUrl: http.frontendUrl })
    }

    // The port is known once listening (PORT=0 takes a free one): the address is filled in then.
    const address: { _tag: "TcpAddress"; hostname: string; port: number } = { _tag: "TcpAddress", hostname: http.host, port: http.port }
    const server = UwsHttpServer.make(app, address, {
      maxBodyBytes: http.maxBodyBytes,
      // Uploads stream to storage as they arrive, under their own cap.
      streamedBody: (method, path) => method === "POST" && path === uploadPath ? uploadBodyCap(uploads) : undefined,
      inFlight,
      sendTimeoutMs: Duration.toMillis(http.sendTimeout),
      onThrow
    })
    yield* Layer.buildWithScope(
      ServeLive.pipe(
        Layer.provide(Layer.succeed(HttpServer.HttpServer, server)),
        Layer.provide(NodeHttpServer.layerContext)
      ),
      scope
    )

    // ---- listening and shutdown ---------------------------------------------------------------

    const listenSocket = yield* Effect.async<Uws.us_listen_socket, Error>((resume) => {
      app.listen(http.host, http.port, (socket) => {
        resume(socket ? Effect.succeed(socket) : Effect.fail(new Error(`Cannot listen on ${http.host}:${http.port}`)))
      })
    })
    address.port = uws.us_socket_local_port(listenSocket)
    yield* Effect.logInfo(`Listening on http://${http.host}:${address.port} (REST, docs at /api, WebSocket at /ws, Socket.IO at /socket.io/)`)

    // Shutdown: stop accepting and starting work (frames get ShuttingDown, requests 503), let what is in flight
    // finish and its answers leave (what was acked is committed, what was committed is acked), then close
    // sockets with 1001; then the layers below close (the database last).
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        ws.stopAccepting()
        inFlight.accepting = false
        uws.us_listen_socket_close(listenSocket)
        const graceEnds = Date.now() + config.shutdownGraceMs
        // REST requests in flight (an upload, a send) finish too, within the same grace.
        // Interruptible: a finalizer is not, and the timeout could not stop the wait for work that never ends
        // (a request on a stalled database): the process outlived its grace, and then its orchestrator's.
        yield* Effect.all([ws.idle, inFlight.idle], { concurrency: "unbounded" }).pipe(
          Effect.interruptible,
          Effect.timeoutOption(config.shutdownGraceMs)
        )
        yield* ws.close(graceEnds)
        yield* Effect.logInfo("Listener closed")
      })
    )

    metrics.gauges({ httpInFlight: () => inFlight.size, connections: ws.connectionsByTransport })
    return Listener.of({ port: address.port, connections: ws.connections })
  })
)
