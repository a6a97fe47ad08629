import { Effect, type Scope } from "effect"
import { io, type Socket } from "socket.io-client"
import { TestServer } from "./TestApp.js"
import { makeWaiting } from "./Waiting.js"

export interface IoEvent {
  readonly event: string
  readonly data: any
}

export interface IoClient {
  readonly socket: Socket
  /** Every event received so far, in order. */
  readonly events: Array<IoEvent>
  /** The next event (after those already consumed by `next`) that matches; fails the test after a timeout. */
  readonly next: (match: (event: IoEvent) => boolean, timeoutMs?: number) => Effect.Effect<IoEvent>
  /** Emits with an acknowledgement callback and waits for what it is called with. */
  readonly request: (event: string, ...args: Array<unknown>) => Effect.Effect<any>
  /** Emits without a callback. */
  readonly emit: (event: string, ...args: Array<unknown>) => Effect.Effect<void>
  /** Why the connection ended (Socket.IO's reason), once it has. */
  readonly disconnected: Effect.Effect<string>
}

/** Matches an event of `name` whose data passes `predicate`: for `next`. */
export const isEvent = (name: string, predicate: (data: any) => boolean = () => true) => (event: IoEvent) =>
  event.event === name && predicate(event.data)

export interface IoOptions {
  /** Where the token goes: `auth.token` (the original's clients), `Authorization: Bearer`, or `?token=`. */
  readonly via?: "auth" | "header" | "query"
  readonly transports?: ReadonlyArray<"polling" | "websocket">
  /** Another server's URL (an instance of a cluster). */
  readonly url?: string
}

const optionsFor = (token: string | undefined, options: IoOptions) => ({
  path: "/socket.io/",
  transports: [...(options.transports ?? ["websocket"])],
  reconnection: false,
  forceNew: true,
  timeout: 5000,
  ...(token === undefined
    ? {}
    : options.via === "header"
    ? { extraHeaders: { authorization: `Bearer ${token}` } }
    : options.via === "query"
    ? { query: { token } }
    : { auth: { token } })
})

/** A real socket.io-client connection, closed with the scope; fails with the `connect_error` when refused. */
export const connectIo = (
  token: string | undefined,
  options: IoOptions = {}
): Effect.Effect<IoClient, Error & { data?: any }, TestServer | Scope.Scope> =>
  Effect.gen(function*() {
    const url = options.url ?? (yield* TestServer).url
    const events: Array<IoEvent> = []
    const { next, waitFor, wake } = makeWaiting(events, { items: "events", one: "an event" })
    let reason: string | undefined
    const socket = yield* Effect.acquireRelease(
      Effect.async<Socket, Error & { data?: any }>((resume) => {
        const socket = io(url, optionsFor(token, options))
        socket.onAny((event: string, data: unknown) => {
          events.push({ event, data })
          wake()
        })
        socket.on("disconnect", (why) => {
          reason = why
          wake()
        })
        socket.once("connect", () => resume(Effect.succeed(socket)))
        socket.once("connect_error", (error) => {
          socket.close()
          resume(Effect.fail(error as Error & { data?: any }))
        })
      }),
      (socket) => Effect.sync(() => socket.close())
    )
    return {
      socket,
      events,
      next,
      request: (event, ...args) =>
        Effect.promise(() => socket.timeout(5000).emitWithAck(event, ...args)),
      emit: (event, ...args) => Effect.sync(() => void socket.emit(event, ...args)),
      disconnected: waitFor(() => reason, 5000, "the disconnect").pipe(Effect.orDie)
    } satisfies IoClient
  })

/** The `connect_error` of a refused connection. */
export const refusedIo = (token: string | undefined, options: IoOptions = {}) =>
  Effect.flip(Effect.scoped(connectIo(token, options)))
