import { Cause, Effect, Exit } from "effect"
import type { Live } from "../domain/chat/Live.js"
import type { Presence } from "../domain/presence/Presence.js"
import type { Auth } from "../domain/users/Auth.js"
import { isUnavailable, retryAfterMs } from "../infra/Unavailable.js"
import type * as Uws from "../server/Uws.js"
import type { WsConfig } from "./Config.js"
import { answerQuietly, type Failures, internalError, unavailableError, unavailableRetryMs } from "./Failures.js"
import { CloseCodes, type ErrorData } from "./Protocol.js"
import { type Sessions, transportOf } from "./Sessions.js"
import type { Socket, SocketData } from "./Socket.js"
import { TokenBucket } from "./TokenBucket.js"
import type { Work } from "./Work.js"

/** The bearer token of `Authorization`, or else `?ticket=` (one-time, from POST /auth/ws-ticket) or `?token=`. */
export const tokenOf = (authorization: string, query: string) => {
  const bearer = /^bearer\s+(.+)$/i.exec(authorization.trim())
  if (bearer?.[1] !== undefined) return bearer[1].trim()
  const params = new URLSearchParams(query)
  return params.get("ticket")?.trim() || (params.get("token")?.trim() ?? "")
}

const refuse = (
  res: Uws.HttpResponse,
  status: string,
  body: ErrorData,
  headers: Readonly<Record<string, string>> = {}
): void => {
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

/** A connection's fate at its start: its socket's state, or why not (an HTTP status, the error's data). */
export type Admission =
  | { readonly _tag: "Admitted"; readonly data: SocketData }
  | {
    readonly _tag: "Refused"
    readonly status: string
    readonly error: ErrorData
    readonly headers?: Readonly<Record<string, string>>
  }

/** Both doors' connections, from admission (the token) through open to close. */
export interface SocketLife {
  /** Checks the token and the user's sockets; `done` hears the outcome once (unless the client left first). */
  readonly admit: (token: string, done: (admission: Admission) => void, aborted: () => boolean) => void
  readonly open: (ws: Socket) => void
  /** The socket closed, with this close code. */
  readonly close: (ws: Socket, code: number) => void
}

export const makeSocketLife = (options: Omit<SocketsOptions, "onMessage">): SocketLife => {
  const { auth, config, failures, live, presence, run, sessions, work } = options
  // Numbers each socket's own topic.
  let admitted = 0
  const refused = (status: string, error: ErrorData, headers?: Record<string, string>): Admission => ({
    _tag: "Refused",
    status,
    error,
    ...(headers === undefined ? {} : { headers })
  })

  const admit: SocketLife["admit"] = (token, done, aborted) => {
    if (work.isShuttingDown) {
      return done(refused("503 Service Unavailable", { code: "ShuttingDown", message: "The server is shutting down" }))
    }
    if (token === "") return done(refused("401 Unauthorized", { code: "Forbidden", message: "Missing token" }))
    run(auth.socketSession(token).pipe(
      Effect.exit,
      Effect.flatMap((exit) =>
        Effect.sync(() => {
          if (aborted()) return
          if (Exit.isFailure(exit)) {
            // Only the token's own problems are 401: with the database away the client must keep its token.
            if (isUnavailable(exit.cause)) {
              failures.unavailable("upgrade", exit.cause)
              const wait = retryAfterMs(unavailableRetryMs, 2)
              return done(refused("503 Service Unavailable", { ...unavailableError, retryAfterMs: wait }, {
                "retry-after": String(Math.ceil(wait / 1000))
              }))
            }
            const failure = Cause.failureOption(exit.cause)
            if (failure._tag === "None") {
              failures.failed("upgrade", exit.cause)
              return done(refused("500 Internal Server Error", internalError))
            }
            return done(refused("401 Unauthorized", { code: "Forbidden", message: failure.value.message }))
          }
          const { expiresAt, sessionId, user } = exit.value
          if (sessions.countOf(user.id) >= config.maxSocketsPerUser) return done(tooMany)
          done({
            _tag: "Admitted",
            data: {
              live: live.connect(user),
              expiresAt,
              sessionId,
              topic: `socket:${++admitted}`,
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
          })
        })
      ),
      Effect.catchAllCause((cause) =>
        Effect.sync(() => {
          failures.failed("upgrade", cause)
          if (!aborted()) answerQuietly(() => done(refused("500 Internal Server Error", internalError)))
        })
      )
    ))
  }
  const tooMany = refused("429 Too Many Requests", {
    code: "TooManyConnections",
    message: `A user holds at most ${config.maxSocketsPerUser} sockets on one server: close one first`
  })

  const open = (ws: Socket) => {
    const data = ws.getUserData()
    ws.subscribe(data.topic)
    sessions.metrics.connectionOpened(transportOf(ws))
    if (sessions.add(ws)) run(presence.connected(data.live.user.id))
    const left = data.expiresAt * 1000 - Date.now()
    data.expiry = setTimeout(() => {
      if (!data.closed) ws.end(CloseCodes.tokenExpired, "token expired")
    }, Math.min(Math.max(left, 0), 2 ** 31 - 1))
  }

  const close = (ws: Socket, code: number) => {
    const data = ws.getUserData()
    if (data.closed) return
    data.closed = true
    sessions.metrics.connectionClosed(transportOf(ws), code)
    clearTimeout(data.expiry)
    if (sessions.remove(ws)) run(presence.disconnected(data.live.user.id))
    // The counterparts hear this device is gone from its conversations.
    data.live.disconnected()
  }

  return { admit, open, close }
}

/**
 * `/ws` on the uWS app: the upgrade (a bearer token in `Authorization` or `?token=`), then a socket's life
 * from open to close. Every callback uWS calls is guarded: a throw there would end the process; it becomes a
 * log line and an answer instead (a 500, an `Internal` error frame, a 1011 close), whatever threw.
 */
export const serveSockets = (app: Uws.TemplatedApp, options: SocketsOptions, life: SocketLife): void => {
  const { config, failures, sessions } = options

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
    life.admit(token, (admission) => {
      if (admission._tag === "Refused") {
        sessions.metrics.connectionRefused("websocket", admission.error.code)
        return refuse(res, admission.status, admission.error, admission.headers)
      }
      // `open` runs within `upgrade`: the count of the user's sockets includes every one upgraded before.
      res.cork(() => res.upgrade(admission.data, key, protocol, extensions, context))
    }, () => aborted)
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
        life.open(ws)
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
        answerQuietly(() => sessions.sendErrorData(ws, internalError, undefined))
      }
    },
    close: (ws, code) => {
      try {
        life.close(ws, code)
      } catch (error) {
        failures.failed("close", Cause.die(error))
      }
    }
  })
}
