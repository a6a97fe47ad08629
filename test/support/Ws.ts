import { expect } from "@effect/vitest"
import { Effect, type Scope } from "effect"
import WebSocket from "ws"
import { TestServer } from "./TestApp.js"
import { makeWaiting } from "./Waiting.js"

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
    const { next, waitFor, wake } = makeWaiting(frames, { items: "frames", one: "a frame" })
    let closed: { code: number; reason: string } | undefined
    const socket = yield* Effect.acquireRelease(
      Effect.async<WebSocket, Error>((resume) => {
        const ws = new WebSocket(url, { headers })
        ws.on("message", (data) => {
          frames.push(JSON.parse(data.toString()))
          wake()
        })
        ws.on("close", (code, reason) => {
          closed = { code, reason: reason.toString() }
          wake()
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

/**
 * Writes windows of 100 acked 4 KB sends from `writer` until `watcher` hears the user go offline (their socket
 * was cut off for not reading; that takes more than the kernel's socket buffers hold, so the backlog builds up
 * in the server) or 6,000 were sent. Windows of acked sends keep the pace whatever the machine's load.
 */
export const floodUntilOffline = (writer: WsClient, watcher: WsClient, conversationId: string, userId: string) =>
  Effect.gen(function*() {
    const offline = () => watcher.frames.some((f) => f.event === "presence" && f.data.userId === userId && !f.data.online)
    let total = 0
    while (!offline() && total < 6000) {
      const window = Array.from({ length: 100 }, () => ++total)
      const replies = yield* Effect.forEach(window, (i) =>
        writer.request("sendMessage", { conversationId, content: `${i} ${"x".repeat(3990)}`, clientMessageId: `b${i}` }), {
        concurrency: "unbounded"
      })
      expect(replies.filter((r) => r.event !== "ack")).toEqual([])
    }
    return { cutOff: offline(), total }
  })
