import { expect, it } from "@effect/vitest"
import { Effect, Schedule } from "effect"
import * as Crypto from "node:crypto"
import * as Http from "node:http"
import { pair } from "../support/Chat.js"
import { startInstance } from "../support/Instances.js"
import { ownPostgres } from "../support/Services.js"
import { TestServer } from "../support/TestApp.js"
import { connect, type WsClient } from "../support/Ws.js"

/** The server as a separate process whose stdout (its logs) goes into `lines`. */
const startApp = (env: Record<string, string>, lines: Array<string>) =>
  Effect.gen(function*() {
    // Every upgrade looks its user up: the outage is seen at once.
    const instance = yield* startInstance({ AUTH_USER_CACHE_TTL: "1 millis", ...env }, { logs: lines })
    yield* Effect.addFinalizer(() => Effect.sync(() => expect(instance.child.exitCode, "the app process died").toBeNull()))
    return instance.server
  })

/** A WebSocket upgrade by hand, to read the refusal's status, headers and body. */
const upgrade = (url: string, token: string) =>
  Effect.async<{ readonly status: number; readonly headers: Http.IncomingHttpHeaders; readonly body: any }, Error>((resume) => {
    const request = Http.get(`${url}/ws`, {
      headers: {
        connection: "Upgrade",
        upgrade: "websocket",
        "sec-websocket-version": "13",
        "sec-websocket-key": Crypto.randomBytes(16).toString("base64"),
        authorization: `Bearer ${token}`
      }
    })
    request.on("upgrade", (response, socket) => {
      socket.destroy()
      resume(Effect.succeed({ status: response.statusCode ?? 0, headers: response.headers, body: null }))
    })
    request.on("response", (response) => {
      let text = ""
      response.on("data", (chunk: Buffer) => (text += chunk.toString()))
      response.on("end", () => resume(Effect.succeed({ status: response.statusCode ?? 0, headers: response.headers, body: JSON.parse(text) })))
    })
    request.on("error", (error) => resume(Effect.fail(error)))
  })

it.scopedLive(
  "Postgres down: a valid token's upgrade is 503 with Retry-After (not 401), frames get Unavailable with retryAfterMs, and a hundred failures log a few lines (starts its own Postgres)",
  () =>
    Effect.gen(function*() {
      const postgres = yield* ownPostgres
      const lines: Array<string> = []
      const server = yield* startApp({ DATABASE_URL: postgres.url, LOG_LEVEL: "Warn" }, lines)
      const { conversationId, trainer, user } = yield* Effect.provideService(pair, TestServer, server)
      const socket = yield* Effect.provideService(connect(user.token), TestServer, server)
      expect((yield* socket.request("joinConversation", { conversationId })).event).toBe("ack")
      expect((yield* upgrade(server.url, trainer.token)).status).toBe(101)

      yield* postgres.stop
      const refused = yield* upgrade(server.url, trainer.token)
      expect(refused.status).toBe(503)
      expect(refused.body.code).toBe("Unavailable")
      expect(Number(refused.headers["retry-after"])).toBeGreaterThanOrEqual(1)
      const bad = yield* upgrade(server.url, "garbage")
      expect(bad.status).toBe(401)

      const reply = yield* socket.request("sendMessage", { conversationId, content: "while down", clientMessageId: "down-1" })
      expect(reply.event).toBe("error")
      expect(reply.data.code).toBe("Unavailable")
      expect(reply.data.retryAfterMs).toBeGreaterThan(0)
      const join = yield* socket.request("joinConversation", { conversationId })
      expect(join.data.code).toBe("Unavailable")

      // Many failing frames: a few log lines, not one (with a stack) per frame.
      const before = lines.length
      const failing = yield* burst(socket, Array.from({ length: 100 }, (_, i) => ({
        event: "sendMessage",
        data: { conversationId, content: `m${i}`, clientMessageId: `f${i}` }
      })))
      expect(failing.every((r) => r.event === "error" && r.data.code === "Unavailable")).toBe(true)
      for (const i of [1, 2, 3, 4, 5]) yield* Effect.either(upgrade(server.url, `${trainer.token}`).pipe(Effect.as(i)))
      yield* Effect.sleep("500 millis")
      const logged = lines.slice(before)
      const entries = logged.filter((line) => /^\[\d\d:\d\d:\d\d\.\d{3}\] [A-Z]+ /.test(line))
      expect(entries.length, entries.join("\n")).toBeLessThanOrEqual(6)
      expect(logged.length, logged.join("\n")).toBeLessThanOrEqual(100)
    }),
  90_000
)

/** Frames written in one TCP write, so that the server reads them in one go; then their replies, in order. */
const burst = (
  client: WsClient,
  frames: ReadonlyArray<{ readonly event: string; readonly data: unknown }>,
  logs?: ReadonlyArray<string>
) =>
  Effect.gen(function*() {
    const tcp = (client.socket as unknown as { _socket: { cork: () => void; uncork: () => void } })._socket
    const ids = frames.map((_, i) => `burst-${++bursts}-${i}`)
    tcp.cork()
    frames.forEach((frame, i) => client.socket.send(JSON.stringify({ ...frame, id: ids[i] })))
    tcp.uncork()
    return yield* Effect.forEach(ids, (id) =>
      Effect.suspend(() => {
        const reply = client.frames.find((f) => f.id === id && (f.event === "ack" || f.event === "error"))
        return reply === undefined ? Effect.fail(new Error(`no reply to ${id}`)) : Effect.succeed(reply)
      }).pipe(
        Effect.retry(Schedule.spaced("20 millis")),
        Effect.timeout("15 seconds"),
        // What the socket saw and the app logged, to tell a slow backend from a lost reply.
        Effect.catchAll(() =>
          Effect.dieMessage(
            `no reply to ${id} within 15 s (socket readyState ${client.socket.readyState}); ` +
              `replies so far ${client.frames.filter((f) => ids.includes(f.id ?? "")).length}/${ids.length}; ` +
              `last frames ${JSON.stringify(client.frames.slice(-5))}; app log:\n${(logs ?? []).slice(-40).join("\n")}`
          )
        )
      ))
  })
let bursts = 0

it.scopedLive(
  "overload: Overloaded hints are jittered and grow with the backlog; joins wait briefly for a slot instead of being refused (starts its own Postgres)",
  () =>
    Effect.gen(function*() {
      const postgres = yield* ownPostgres
      const logs: Array<string> = []
      const server = yield* startApp({ DATABASE_URL: postgres.url, LOG_LEVEL: "Warn", WS_MAX_IN_FLIGHT: "2" }, logs)
      const { conversationId, user } = yield* Effect.provideService(pair, TestServer, server)
      const u = yield* Effect.provideService(connect(user.token), TestServer, server)
      const replies = yield* burst(u, Array.from({ length: 60 }, (_, i) => ({
        event: "sendMessage",
        data: { conversationId, content: `m${i}`, clientMessageId: `o${i}` }
      })), logs)
      const hints = replies.filter((r) => r.event === "error" && r.data.code === "Overloaded").map((r) => r.data.retryAfterMs as number)
      expect(hints.length).toBeGreaterThan(20)
      expect(new Set(hints).size).toBeGreaterThan(hints.length / 2)
      const mean = (values: ReadonlyArray<number>) => values.reduce((a, b) => a + b, 0) / values.length
      expect(mean(hints.slice(-5))).toBeGreaterThan(2 * mean(hints.slice(0, 5)))
      for (const hint of hints) expect(hint).toBeLessThanOrEqual(30_000)

      const joins = yield* burst(u, Array.from({ length: 12 }, () => ({ event: "joinConversation", data: { conversationId } })), logs)
      expect(joins.map((r) => r.event === "ack" ? "ack" : r.data.code)).toEqual(Array.from({ length: 12 }, () => "ack"))
    }),
  90_000
)
