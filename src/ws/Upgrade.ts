import { Cause, Effect, Exit } from "effect"
import type { Live } from "../domain/chat/Live.js"
import type { Presence } from "../domain/presence/Presence.js"
import type { Auth } from "../domain/users/Auth.js"
import { isUnavailable, retryAfterMs } from "../infra/Unavailable.js"
import type * as Uws from "../server/Uws.js"
import type { WsConfig } from "./Config.js"
import { answerQuietly, type Failures, internalError, unavailableError, unavailableRetryMs } from "./Failures.js"
import { CloseCodes, type ErrorData } from "./Protocol.js"
import type { Sessions } from "./Sessions.js"
import { errorFrame, type Socket, type SocketData } from "./Socket.js"
import { TokenBucket } from "./TokenBucket.js"
import type { Work } from "./Work.js"

const tokenOf = (authorization: string, query: string) => {
  const bearer = /^bearer\s+(.+)$/i.exec(authorization.trim())
  if (bearer?.[1] !== undefined) return bearer[1].trim()
  return new URLSearchParams(query).get("token")?.trim() ?? ""
}

const refuse = (res: Uws.HttpResponse, status: string, body: ErrorData, headers: Record<string, string> = {}): void => {
  res.cork(() => {
    res.writeStatus(status).writeHeader("content-type", "application/json")
    for (const [name, value] of Object.entries(headers)) res.writeHeader(name, value)
    res.end(JSON.stringify(body))
  })
}

export interface SocketsOptions {
  readonly config: WsConfig
  readonly sessions: Sessions
  readonly work: Work
  readonly failures: Failures
  readonly auth: Auth
  readonly live: Live
  readonly presence: Presence
  readonly run: (effect: Effect.Effect<unknown, unknown>) => void
  readonly onMessage: (ws: Socket, buffer: ArrayBuffer, isBinary: boolean) => void
}

/**
 * `/ws` on the uWS app: the upgrade (a bearer token in `Authorization` or `?token=`), then a socket's life
 * from open to close. Every callback uWS calls is guarded: a throw there would end the process; it becomes a
 * log line and an answer instead (a 500, an `Internal` error frame, a 1011 close), whatever threw.
 */
export const serveSockets = (app: Uws.TemplatedApp, options: SocketsOptions): void => {
  const { auth, config, failures, live, presence, run, sessions, work } = options
  // Numbers each socket's own topic.
  let upgrades = 0

  const upgrade = (res: Uws.HttpResponse, req: Uws.HttpRequest, context: Uws.us_socket_context_t) => {
    // Everything from `req` is read now: it is gone once this callback returns.
    const key = req.getHeader("sec-websocket-key")
    const protocol = req.getHeader("sec-websocket-protocol")
    const extensions = req.getHeader("sec-websocket-extensions")
    const token = tokenOf(req.getHeader("authorization"), req.getQuery())
    let aborted = false
    res.onAborted(() => {
      aborted = true
    })
    if (work.isShuttingDown) {
      return refuse(res, "503 Service Unavailable", { code: "ShuttingDown", message: "The server is shutting down" })
    }
    if (token === "") return refuse(res, "401 Unauthorized", { code: "Forbidden", message: "Missing token" })
    run(auth.session(token).pipe(
      Effect.exit,
      Effect.flatMap((exit) =>
        Effect.sync(() => {
          if (aborted) return
          if (Exit.isFailure(exit)) {
            // Only the token's own problems are 401: with the database away the client must keep its token.
            if (isUnavailable(exit.cause)) {
              failures.unavailable("upgrade", exit.cause)
              const wait = retryAfterMs(unavailableRetryMs, 2)
              return refuse(res, "503 Service Unavailable", { ...unavailableError, retryAfterMs: wait }, {
                "retry-after": String(Math.ceil(wait / 1000))
              })
            }
            const failure = Cause.failureOption(exit.cause)
            if (failure._tag === "None") {
              failures.failed("upgrade", exit.cause)
              return refuse(res, "500 Internal Server Error", internalError)
            }
            return refuse(res, "401 Unauthorized", { code: "Forbidden", message: failure.value.message })
          }
          const { expiresAt, user } = exit.value
          // `open` runs within `upgrade`: the count includes every socket upgraded before this one.
          if (sessions.countOf(user.id) >= config.maxSocketsPerUser) {
            return refuse(res, "429 Too Many Requests", {
              code: "TooManyConnections",
              message: `A user holds at most ${config.maxSocketsPerUser} sockets on one server: close one first`
            })
          }
          const data: SocketData = {
            live: live.connect(user),
            expiresAt,
            topic: `socket:${++upgrades}`,
            joined: new Set(),
            joinedAt: new Map(),
            pending: new Map(),
            sends: new TokenBucket(config.sendPerSecond, config.sendBurst),
            typings: new TokenBucket(config.typingPerSecond, config.typingPerSecond * 2),
            joins: new TokenBucket(config.joinPerSecond, config.joinBurst),
            reads: new TokenBucket(config.readPerSecond, config.readBurst),
            badFrames: 0,
            closed: false,
            expiry: undefined
          }
          res.cork(() => res.upgrade(data, key, protocol, extensions, context))
        })
      ),
      Effect.catchAllCause((cause) =>
        Effect.sync(() => {
          failures.failed("upgrade", cause)
          if (!aborted) answerQuietly(() => refuse(res, "500 Internal Server Error", internalError))
        })
      )
    ))
  }

  const open = (ws: Socket) => {
    const data = ws.getUserData()
    ws.subscribe(data.topic)
    if (sessions.add(ws)) run(presence.connected(data.live.user.id))
    const left = data.expiresAt * 1000 - Date.now()
    data.expiry = setTimeout(() => {
      if (!data.closed) ws.end(CloseCodes.tokenExpired, "token expired")
    }, Math.min(Math.max(left, 0), 2 ** 31 - 1))
  }

  const close = (ws: Socket) => {
    const data = ws.getUserData()
    data.closed = true
    clearTimeout(data.expiry)
    if (sessions.remove(ws)) run(presence.disconnected(data.live.user.id))
    // The counterparts hear this device is gone from its conversations.
    data.live.disconnected()
  }

  app.ws<SocketData>("/ws", {
    // Above our own limit, so that an oversized frame reaches `message` and gets a proper 1009 close.
    maxPayloadLength: config.maxPayloadBytes * 4,
    idleTimeout: config.idleTimeoutSeconds,
    sendPingsAutomatically: true,
    // The hard stop: sockets past WS_MAX_BACKPRESSURE_BYTES are closed with 4009 before a send; uWS drops
    // (and closes) only far beyond it.
    maxBackpressure: config.maxBackpressureBytes * 4,
    closeOnBackpressureLimit: 1,
    upgrade: (res, req, context) => {
      try {
        upgrade(res, req, context)
      } catch (error) {
        failures.failed("upgrade", Cause.die(error))
        answerQuietly(() => refuse(res, "500 Internal Server Error", internalError))
      }
    },
    open: (ws) => {
      try {
        open(ws)
      } catch (error) {
        failures.failed("open", Cause.die(error))
        answerQuietly(() => ws.end(1011, "internal error"))
      }
    },
    message: (ws, buffer, isBinary) => {
      try {
        options.onMessage(ws, buffer, isBinary)
      } catch (error) {
        failures.failed("message", Cause.die(error))
        answerQuietly(() => sessions.send(ws, errorFrame(internalError, undefined)))
      }
    },
    close: (ws) => {
      try {
        close(ws)
      } catch (error) {
        failures.failed("close", Cause.die(error))
      }
    }
  })
}
