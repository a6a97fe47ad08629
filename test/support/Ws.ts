import { Effect, type Scope } from "effect"
import WebSocket from "ws"
import { TestServer } from "./TestApp.js"

export interface Frame {
  readonly event: string
  readonly data: any
  readonly id?: string
}

export interface WsClient {
  readonly socket: WebSocket
  /** Every frame received so far, in order. */
  readonly frames: Array<Frame>
  readonly send: (event: string, data: unknown, id?: string) => Effect.Effect<void>
  readonly raw: (payload: string | Buffer) => Effect.Effect<void>
  /** The next frame (after those already consumed by `next`) that matches; fails the test after a timeout. */
  readonly next: (match: (frame: Frame) => boolean, timeoutMs?: number) => Effect.Effect<Frame>
  /** Sends a frame with an id and waits for its ack or error. */
  readonly request: (event: string, data: unknown) => Effect.Effect<Frame>
  readonly closed: Effect.Effect<{ readonly code: number; readonly reason: string }>
}

/** Matches a frame of `event` whose data passes `predicate`: for `next`. */
export const is = (event: string, predicate: (data: any) => boolean = () => true) => (frame: Frame) =>
  frame.event === event && predicate(frame.data)

let counter = 0

/** A real WebSocket client on /ws, closed with the scope. */
export const connect = (
  token: string | undefined,
  options: { readonly via?: "header" | "query" } = {}
): Effect.Effect<WsClient, Error, TestServer | Scope.Scope> =>
  Effect.gen(function*() {
    const server = yield* TestServer
    const base = server.url.replace(/^http/, "ws") + "/ws"
    const viaQuery = options.via === "query" && token !== undefined
    const url = viaQuery ? `${base}?token=${encodeURIComponent(token)}` : base
    const headers: Record<string, string> = token !== undefined && !viaQuery ? { authorization: `Bearer ${token}` } : {}
    const frames: Array<Frame> = []
    const waiters = new Set<() => void>()
    let closed: { code: number; reason: string } | undefined
    const socket = yield* Effect.acquireRelease(
      Effect.async<WebSocket, Error>((resume) => {
        const ws = new WebSocket(url, { headers })
        ws.on("message", (data) => {
          frames.push(JSON.parse(data.toString()))
          for (const wake of waiters) wake()
        })
        ws.on("close", (code, reason) => {
          closed = { code, reason: reason.toString() }
          for (const wake of waiters) wake()
        })
        ws.once("open", () => resume(Effect.succeed(ws)))
        ws.once("unexpected-response", (_, response) => {
          let body = ""
          response.on("data", (chunk: Buffer) => (body += chunk.toString()))
          response.on("end", () => resume(Effect.fail(new Error(`${response.statusCode} ${body}`))))
        })
        ws.once("error", (error) => resume(Effect.fail(error)))
      }),
      (ws) => Effect.sync(() => ws.terminate())
    )
    let cursor = 0
    const waitFor = <A>(check: () => A | undefined, timeoutMs: number, what: string) =>
      Effect.async<A, Error>((resume) => {
        const attempt = () => {
          const found = check()
          if (found !== undefined) {
            cleanup()
            resume(Effect.succeed(found))
          }
        }
        const timer = setTimeout(() => {
          cleanup()
          resume(Effect.fail(new Error(`timed out waiting for ${what}; frames: ${JSON.stringify(frames.slice(-5))}`)))
        }, timeoutMs)
        const cleanup = () => {
          clearTimeout(timer)
          waiters.delete(attempt)
        }
        waiters.add(attempt)
        attempt()
      })
    const next = (match: (frame: Frame) => boolean, timeoutMs = 3000) =>
      waitFor(() => {
        for (let i = cursor; i < frames.length; i++) {
          if (match(frames[i]!)) {
            cursor = i + 1
            return frames[i]!
          }
        }
        return undefined
      }, timeoutMs, "a frame").pipe(Effect.orDie)
    const send = (event: string, data: unknown, id?: string) =>
      Effect.sync(() => socket.send(JSON.stringify(id === undefined ? { event, data } : { event, data, id })))
    const request = (event: string, data: unknown) =>
      Effect.gen(function*() {
        const id = `r${++counter}`
        yield* send(event, data, id)
        return yield* waitFor(
          () => frames.find((f) => f.id === id && (f.event === "ack" || f.event === "error")),
          5000,
          `the reply to ${event}`
        ).pipe(Effect.orDie)
      })
    return {
      socket,
      frames,
      send,
      raw: (payload) => Effect.sync(() => socket.send(payload)),
      next,
      request,
      closed: waitFor(() => closed, 5000, "close").pipe(Effect.orDie)
    } satisfies WsClient
  })

/** The upgrade's HTTP answer when it is refused. */
export const refusedUpgrade = (token: string | undefined, options: { readonly via?: "header" | "query" } = {}) =>
  Effect.flip(Effect.scoped(connect(token, options)))
