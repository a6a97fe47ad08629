import { Effect, FiberSet } from "effect"
import { Live } from "../domain/chat/Live.js"
import { Messages } from "../domain/chat/Messages.js"
import { Bus } from "../domain/ports/Bus.js"
import { Metrics, type Transport } from "../domain/ports/Metrics.js"
import { Presence } from "../domain/presence/Presence.js"
import { Auth } from "../domain/users/Auth.js"
import type * as Uws from "../server/Uws.js"
import { HttpConfig } from "../http/Server.js"
import { tracedDelivery } from "../infra/telemetry/Tracing.js"
import { WsConfig } from "./Config.js"
import { makeDispatch } from "./Dispatch.js"
import type { EventContext } from "./events/Context.js"
import { join } from "./events/join.js"
import { leave } from "./events/leave.js"
import { markAsRead } from "./events/markAsRead.js"
import { sendMessage } from "./events/sendMessage.js"
import { typing } from "./events/typing.js"
import { FanOut } from "./FanOut.js"
import { Failures } from "./Failures.js"
import { Sessions, transportOf } from "./Sessions.js"
import { mountSocketIo } from "./SocketIo.js"
import { makeSocketLife, serveSockets } from "./Upgrade.js"
import { Work } from "./Work.js"

/** What the listener needs of the WebSocket door: its count, and the steps of its shutdown. */
export interface WsDoor {
  readonly connections: () => number
  readonly connectionsByTransport: () => Record<Transport, number>
  /** New frames get `ShuttingDown`, new upgrades 503; what is in flight goes on. */
  readonly stopAccepting: () => void
  /** Done when no work started by a socket is in flight. */
  readonly idle: Effect.Effect<void>
  /** Lets sockets take what was written to them (until `graceEnds`, epoch ms), then closes them with 1001. */
  readonly close: (graceEnds: number) => Effect.Effect<void>
}

/**
 * The WebSocket door, `/ws` on the listener's uWS app, and the Socket.IO door beside it (`/socket.io/`, see
 * SocketIo.ts): sockets of both (Sessions), frames → events (Dispatch → `events/<name>.ts`, which call the
 * domain's Live session), bus events → frames (FanOut).
 */
export const mount = (app: Uws.TemplatedApp) =>
  Effect.gen(function*() {
    const config = yield* WsConfig
    const http = yield* HttpConfig
    const auth = yield* Auth
    const messages = yield* Messages
    const live = yield* Live
    const bus = yield* Bus
    const presence = yield* Presence

    // Work started by sockets: tracked so that shutdown can wait for sends in flight.
    const fibers = yield* FiberSet.make<unknown, unknown>()
    const run = yield* FiberSet.runtime(fibers)<never>()

    const sessions = new Sessions(app, config.maxBackpressureBytes, yield* Metrics)
    const failures = new Failures(run)
    const work = new Work(sessions, failures, run, config.wsMaxInFlight)
    const fanOut = new FanOut(sessions, messages, run, () => work.isShuttingDown)
    // Each client event and its handler: one module per event.
    const context: EventContext = { config, sessions, work, fanOut }
    const dispatch = makeDispatch(config, sessions, {
      joinConversation: join(context),
      leaveConversation: leave(context),
      sendMessage: sendMessage(context),
      typing: typing(context),
      markAsRead: markAsRead(context)
    })

    // With tracing on, an event carrying its publisher's trace context is delivered in a span of that trace.
    yield* bus.subscribe(yield* tracedDelivery("FanOut.deliver", fanOut.deliver), () => fanOut.resync())
    const options = { config, sessions, work, failures, auth, live, presence, run, onMessage: dispatch.onFrame }
    const life = makeSocketLife(options)
    serveSockets(app, options, life)
    // The original's clients: Socket.IO on the same app, its connections driven like the native sockets.
    const socketIo = config.socketIo
      ? yield* Effect.promise(() =>
        mountSocketIo(app, { config, sessions, failures, life, frontendUrl: http.frontendUrl, onEvent: dispatch.onEvent })
      )
      : { close: () => undefined }

    return {
      connections: () => sessions.sockets.size,
      connectionsByTransport: () => {
        const open = { websocket: 0, socketio: 0 }
        for (const ws of sessions.sockets) open[transportOf(ws)]++
        return open
      },
      stopAccepting: () => work.stopAccepting(),
      idle: Effect.zipRight(work.idle, FiberSet.awaitEmpty(fibers)),
      // uWS writes published frames at the end of the loop's turn; the close frame goes after them. Sockets
      // still writing get the rest of the grace to take them.
      close: (graceEnds) =>
        Effect.gen(function*() {
          yield* Effect.void.pipe(
            Effect.delay("20 millis"),
            Effect.repeat({
              until: () => Date.now() >= graceEnds || [...sessions.sockets].every((ws) => ws.getBufferedAmount() === 0)
            })
          )
          for (const ws of [...sessions.sockets]) ws.end(1001, "server shutting down")
          socketIo.close()
        })
    } satisfies WsDoor
  })
