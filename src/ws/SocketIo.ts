import { Cause } from "effect"
import type { Server as IoServer, Socket as IoSocket } from "socket.io"
import { corsOrigins } from "../http/Shared.js"
import type * as Uws from "../server/Uws.js"
import type { WsConfig } from "./Config.js"
import { answerQuietly, type Failures, internalError } from "./Failures.js"
import { CloseCodes, type ErrorData } from "./Protocol.js"
import type { Sessions } from "./Sessions.js"
import type { Socket, SocketData } from "./Socket.js"
import { type SocketLife, tokenOf } from "./Upgrade.js"

/** Where Socket.IO clients connect (its default: `io("https://host")` needs no path). */
export const socketIoPath = "/socket.io/"

/**
 * Closes after which a Socket.IO client reconnects by itself (the server went away, the client fell behind, its
 * token expired: `auth` as a function gives the reconnection a fresh one); after the others (deactivated,
 * signed out, abuse) the server disconnects it and it stays away until the app connects again.
 */
const reconnects = new Set<number>([1001, CloseCodes.tooSlow, CloseCodes.tokenExpired])

/** Socket.IO's default parser, the default namespace: an EVENT packet is `2["name",data]`, an ACK `3<id>[data]`. */
const eventPacket = (event: string, dataJson: string) => `2["${event}",${dataJson}]`
const ackPacket = (id: number, dataJson: string) => `3${id}[${dataJson}]`

const isBinary = (value: unknown) => Buffer.isBuffer(value) || value instanceof ArrayBuffer || ArrayBuffer.isView(value)

/**
 * A Socket.IO connection as the door's other sockets are (see `Socket`): the handlers, the sessions and the
 * fan-out treat it as they treat a native one, and every frame they write for it comes through `deliver`:
 * answers to an event go out as its ACK packet, the rest as events of the same name and data.
 *
 * Packets wait for the end of the event loop's turn and leave together, as the native sockets' frames do: on a
 * WebSocket, corked into one write straight to the uWS socket (the engine's own path wrote each packet at
 * once, a system call each, and that was a third of the door's CPU); over long-polling, through the engine.
 */
export class SocketIoConnection implements Socket {
  /** The packet ids of the client's events waiting for their answer, by the id the door gave the event. */
  private readonly answers = new Map<string, number>()
  private asked = 0
  /** Packets of this turn, not written yet. */
  private outbox: Array<string> = []
  private outboxBytes = 0
  /** The close code the server ended it with, if it did. */
  closeCode: number | undefined

  constructor(readonly io: IoSocket, private readonly data: SocketData, private readonly later: (ws: SocketIoConnection) => void) {}

  getUserData(): SocketData {
    return this.data
  }

  subscribe(): boolean {
    return true
  }

  unsubscribe(): boolean {
    return true
  }

  /** What waits in the engine's buffer (the client has not polled for it) and in the WebSocket's. */
  getBufferedAmount(): number {
    const conn = this.io.conn as unknown as {
      readonly writeBuffer: ReadonlyArray<{ readonly data?: unknown }>
      readonly transport?: { readonly socket?: { getBufferedAmount?: () => number } }
    }
    let bytes = this.outboxBytes
    for (const packet of conn.writeBuffer) if (typeof packet.data === "string") bytes += packet.data.length
    try {
      bytes += conn.transport?.socket?.getBufferedAmount?.() ?? 0
    } catch {
      // the WebSocket closed already
    }
    return bytes
  }

  /**
   * Says why in an `error` event (`SocketClosed`, with the native close code), then closes: the engine's
   * connection when the client should come back by itself, the Socket.IO socket when it should not.
   */
  end(code = 1000, reason = ""): void {
    if (this.data.closed || !this.io.connected) return
    this.closeCode = code
    this.write("error", JSON.stringify({ code: "SocketClosed", message: reason, closeCode: code }))
    this.flush()
    if (reconnects.has(code)) this.io.conn.close()
    else this.io.disconnect(true)
  }

  /** An id for an event the client wants answered: its answer (`ack` or `error` with this id) is its ACK packet. */
  ask(packetId: number): string {
    const id = String(++this.asked)
    this.answers.set(id, packetId)
    return id
  }

  /**
   * One frame of the native protocol, `{"event":"<name>"[,"id":"<id>"],"data":<json>}` as `frameOf`,
   * `frameAround` and `encodeServerEvent` write it (the door's own ids are digits).
   */
  readonly deliver = (frame: string): void => {
    const eventEnd = frame.indexOf("\"", 10)
    const event = frame.slice(10, eventEnd)
    let at = eventEnd + 1
    if (frame.startsWith(",\"id\":\"", at)) {
      const idEnd = frame.indexOf("\"", at + 7)
      const id = frame.slice(at + 7, idEnd)
      at = idEnd + 1
      const packetId = this.answers.get(id)
      if (packetId !== undefined) {
        this.answers.delete(id)
        const data = frame.slice(at + 8, -1)
        return this.writeRaw(ackPacket(packetId, event === "error" ? `{"error":${data}}` : data))
      }
    }
    this.write(event, frame.slice(at + 8, -1))
  }

  private write(event: string, dataJson: string): void {
    this.writeRaw(eventPacket(event, dataJson))
  }

  /** A packet as Socket.IO's default parser encodes it, written at the end of the turn as one engine message. */
  private writeRaw(packet: string): void {
    if (this.outbox.length === 0) this.later(this)
    this.outbox.push(packet)
    this.outboxBytes += packet.length
  }

  /** Writes what this turn queued. */
  flush(): void {
    const packets = this.outbox
    if (packets.length === 0) return
    this.outbox = []
    this.outboxBytes = 0
    const conn = this.io.conn as unknown as {
      readonly readyState: string
      readonly upgrading: boolean
      readonly transport: { readonly name: string; readonly writable: boolean; readonly socket?: Uws.WebSocket<unknown> }
      write: (packet: string) => void
    }
    if (conn.readyState !== "open") return
    const ws = conn.transport.name === "websocket" && !conn.upgrading && conn.transport.writable ? conn.transport.socket : undefined
    if (ws === undefined) {
      for (const packet of packets) conn.write(packet)
      return
    }
    // An Engine.IO message packet is "4" and its data; one WebSocket message each, one write for all.
    ws.cork(() => {
      for (const packet of packets) ws.send(`4${packet}`, false)
    })
  }
}

export interface SocketIoOptions {
  readonly config: WsConfig
  readonly sessions: Sessions
  readonly failures: Failures
  readonly life: SocketLife
  readonly frontendUrl: string
  readonly onEvent: (ws: Socket, event: string, id: string | undefined, data: unknown) => void
}

/**
 * uWS calls these from native code: a throw in one would end the process. Socket.IO's engine registers its
 * routes through this stand-in for the app, and every callback it gives uWS is guarded.
 */
const guardedApp = (app: Uws.TemplatedApp, failures: Failures) => {
  const guard = <F extends (...args: Array<never>) => unknown>(where: string, f: F | undefined): F | undefined =>
    f === undefined ? undefined : (((...args: Parameters<F>) => {
      try {
        return f(...args)
      } catch (error) {
        failures.failed(`socket.io ${where}`, Cause.die(error))
        const [res] = args as unknown as [{ close?: () => void; end?: (code?: number) => void }]
        // An HTTP response is closed; a WebSocket ends with 1011.
        answerQuietly(() => "writeStatus" in (res as object) ? res.close?.() : res.end?.(1011))
      }
    }) as F)
  const stand: Pick<Uws.TemplatedApp, "any" | "ws"> = {
    any: (pattern, handler) => {
      app.any(pattern, guard("request", handler)!)
      return stand as Uws.TemplatedApp
    },
    ws: (pattern, behavior) => {
      const guarded = { ...behavior }
      for (const name of ["upgrade", "open", "message", "drain", "close"] as const) {
        const f = behavior[name] as ((...args: Array<never>) => unknown) | undefined
        if (f !== undefined) (guarded as Record<string, unknown>)[name] = guard(name, f)
      }
      app.ws(pattern, guarded)
      return stand as Uws.TemplatedApp
    }
  }
  return stand as Uws.TemplatedApp
}

/**
 * The Socket.IO door on the listener's uWS app (`/socket.io/`, WebSocket and long-polling): the original's
 * clients connect with `io(url, { auth: { token } })` and talk in the native protocol's events, answered
 * through their acknowledgement callbacks. Its connections are the door's sockets (see `SocketIoConnection`),
 * driven by the same handlers, sessions and bus: no adapter of Socket.IO's own.
 */
export const mountSocketIo = async (app: Uws.TemplatedApp, options: SocketIoOptions) => {
  const { config, failures, life, onEvent, sessions } = options
  // Loaded only when the door is on (SOCKETIO_ENABLED): its modules would otherwise sit in every heap.
  const { Server } = await import("socket.io")
  // Connections with packets queued this turn: written once it ends.
  let queued: Array<SocketIoConnection> = []
  const flushAll = () => {
    const connections = queued
    queued = []
    for (const ws of connections) {
      try {
        ws.flush()
      } catch (error) {
        failures.failed("socket.io write", Cause.die(error))
      }
    }
  }
  const later = (ws: SocketIoConnection) => {
    if (queued.length === 0) setImmediate(flushAll)
    queued.push(ws)
  }
  const origins = corsOrigins(options.frontendUrl)
  const io: IoServer = new Server({
    path: socketIoPath,
    serveClient: false,
    transports: ["polling", "websocket"],
    // A packet above the native door's payload limit ends the connection, as a frame above it ends a socket.
    maxHttpBufferSize: config.maxPayloadBytes,
    pingInterval: 25_000,
    pingTimeout: 20_000,
    cors: { origin: origins.includes("*") ? "*" : [...origins], credentials: !origins.includes("*") }
  })
  // The engine passes these on to uWS's WebSocket route (Socket.IO's own types do not list them).
  io.attachApp(guardedApp(app, failures), {
    idleTimeout: Math.max(config.idleTimeoutSeconds, 60),
    maxBackpressure: config.maxBackpressureBytes * 4
  } as Parameters<IoServer["attachApp"]>[1])

  // The handshake: `auth.token` (or `auth.ticket`), `Authorization: Bearer`, or `?token=` (`?ticket=`); refused with a `connect_error` whose
  // `data` is the native error (`Forbidden`, `Unavailable` with `retryAfterMs`, `TooManyConnections`, …).
  io.use((socket, next) => {
    const auth = socket.handshake.auth as { token?: unknown; ticket?: unknown } | undefined
    const header = socket.handshake.headers.authorization
    const { ticket, token: query } = socket.handshake.query
    const token = (typeof auth?.token === "string" ? auth.token.trim() : "") ||
      (typeof auth?.ticket === "string" ? auth.ticket.trim() : "") ||
      tokenOf(typeof header === "string" ? header : "", "") ||
      (typeof ticket === "string" ? ticket.trim() : "") ||
      (typeof query === "string" ? query.trim() : "")
    let gone = false
    socket.conn.once("close", () => {
      gone = true
    })
    life.admit(token, (admission) => {
      if (admission._tag === "Admitted") {
        ;(socket.data as { socket?: SocketData }).socket = admission.data
        return next()
      }
      sessions.metrics.connectionRefused("socketio", admission.error.code)
      next(Object.assign(new Error(admission.error.message), { data: admission.error satisfies ErrorData }))
    }, () => gone)
  })

  io.on("connection", (socket) => {
    try {
      const data = (socket.data as { socket?: SocketData }).socket!
      const ws = new SocketIoConnection(socket, data, later)
      // Admitted a moment ago: other connections of the user may have opened since.
      if (sessions.countOf(data.live.user.id) >= config.maxSocketsPerUser) {
        data.closed = true
        data.live.disconnected()
        ws.io.emit("error", { code: "TooManyConnections", message: "Too many sockets for one user: close one first" })
        return socket.disconnect(true)
      }
      life.open(ws)
      socket.on("disconnect", (reason: string) => {
        try {
          // Closed by the server with a code, or by the client (1000), or lost (1006).
          life.close(ws, ws.closeCode ?? (reason === "client namespace disconnect" ? 1000 : 1006))
        } catch (error) {
          failures.failed("socket.io close", Cause.die(error))
        }
      })
      // Events are taken where Socket.IO decodes them (`onevent`, of the version pinned in package.json), before
      // it makes an acknowledgement closure and emits them: the answer is written as the ACK packet straight
      // from the native frame's text, with no decoding and encoding again, on every send's path.
      ;(socket as unknown as { onevent: (packet: { readonly id?: number; readonly data?: unknown }) => void }).onevent = (packet) => {
        try {
          const args = Array.isArray(packet.data) ? packet.data : []
          const id = typeof packet.id === "number" ? ws.ask(packet.id) : undefined
          if (args.some(isBinary)) return sessions.sendError(ws, id, "BadFrame", "Events carry JSON data, not binary")
          onEvent(ws, String(args[0]), id, args[1])
        } catch (error) {
          failures.failed("socket.io message", Cause.die(error))
          answerQuietly(() => sessions.sendErrorData(ws, internalError, undefined))
        }
      }
    } catch (error) {
      failures.failed("socket.io open", Cause.die(error))
      answerQuietly(() => socket.disconnect(true))
    }
  })

  return {
    /** Ends the engine (its timers) once the door's sockets are closed. */
    close: () => io.engine.close()
  }
}
