import { HttpApp } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Config, Context, Duration, Effect, FiberSet, Layer } from "effect"
import { AttachmentsConfig, uploadBodyCap } from "../domain/attachments/Attachments.js"
import { uploadPath } from "../http/attachments/Api.js"
import { PeerAddress } from "../http/ClientIp.js"
import { HttpConfig, makeHttpApp } from "../http/Server.js"
import * as WsDoor from "../ws/Door.js"
import { serveFastRoutes } from "./FastRoutes.js"
import { describeThrow } from "./Guards.js"
import { serveHttp } from "./HttpBridge.js"
import { InFlight } from "./InFlight.js"
import * as Uws from "./Uws.js"

export const ListenerConfig = Config.all({
  shutdownGraceMs: Config.integer("SHUTDOWN_GRACE_MS").pipe(Config.withDefault(10_000)),
  /** REST requests being worked on at once; beyond, new ones are refused with 503. */
  httpMaxInFlight: Config.integer("HTTP_MAX_IN_FLIGHT").pipe(Config.withDefault(512)),
  /** Send and history pages served on uWS directly (see FastRoutes); off, they take the generic HttpApp path. */
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
    const app = uws.App()

    // ---- routes -------------------------------------------------------------------------------

    const ws = yield* WsDoor.mount(app)

    const httpApp = yield* makeHttpApp
    const httpRuntime = yield* Effect.runtime<Layer.Layer.Success<typeof NodeHttpServer.layerContext>>().pipe(
      Effect.provide(NodeHttpServer.layerContext)
    )
    const webHandler = HttpApp.toWebHandlerRuntime(httpRuntime)(httpApp)
    const fibers = yield* FiberSet.make<unknown, unknown>()
    const run = yield* FiberSet.runtime(fibers)<never>()
    const httpInFlight = new InFlight(config.httpMaxInFlight)
    if (config.httpFastRoutes) {
      yield* serveFastRoutes(app, {
        fibers,
        inFlight: httpInFlight,
        maxBodyBytes: http.maxBodyBytes,
        frontendUrl: http.frontendUrl
      })
    }
    // Uploads stream to storage as they arrive.
    const uploadCap = uploadBodyCap(uploads)
    serveHttp(app, (request, peer) => webHandler(request, Context.make(PeerAddress, peer)), {
      streamedBody: (method, path) => method === "POST" && path === uploadPath ? uploadCap : undefined,
      maxBodyBytes: http.maxBodyBytes,
      inFlight: httpInFlight,
      sendTimeoutMs: Duration.toMillis(http.sendTimeout),
      onThrow: (error) => void run(Effect.logError(`HTTP handler threw: ${describeThrow(error)}`))
    })

    // ---- listening and shutdown ---------------------------------------------------------------

    const listenSocket = yield* Effect.async<Uws.us_listen_socket, Error>((resume) => {
      app.listen(http.host, http.port, (socket) => {
        resume(socket ? Effect.succeed(socket) : Effect.fail(new Error(`Cannot listen on ${http.host}:${http.port}`)))
      })
    })
    const port = uws.us_socket_local_port(listenSocket)
    yield* Effect.logInfo(`Listening on http://${http.host}:${port} (REST, docs at /api, WebSocket at /ws)`)

    // Shutdown: stop accepting and starting work (frames get ShuttingDown), let what is in flight finish and
    // its answers leave (what was acked is committed, what was committed is acked), then close sockets with
    // 1001; then the layers below close (the database last).
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        ws.stopAccepting()
        uws.us_listen_socket_close(listenSocket)
        // REST requests in flight (an upload, a send on the generic path) finish too, within the same grace.
        const restDone = Effect.void.pipe(
          Effect.delay("20 millis"),
          Effect.repeat({ until: () => httpInFlight.size === 0 })
        )
        const graceEnds = Date.now() + config.shutdownGraceMs
        yield* Effect.all([ws.idle, FiberSet.awaitEmpty(fibers), restDone], { concurrency: "unbounded" }).pipe(
          Effect.timeoutOption(config.shutdownGraceMs)
        )
        yield* ws.close(graceEnds)
        yield* Effect.logInfo("Listener closed")
      })
    )

    return Listener.of({ port, connections: ws.connections })
  })
)
