import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { spawnSync } from "node:child_process"
import { readFileSync } from "node:fs"
import { pair, send } from "../support/Chat.js"
import { freePort } from "../support/Instances.js"
import * as TestApp from "../support/TestApp.js"
import { TestServer } from "../support/TestApp.js"
import { uniqueEmail } from "../support/Users.js"
import { connectIo, isEvent } from "../support/SocketIo.js"
import { connect, is } from "../support/Ws.js"

const metricsPort = await Effect.runPromise(freePort)
const maxBody = 4096

/** One scrape of the metrics listener, over HTTP. */
const scrape = Effect.promise(async () => {
  const response = await fetch(`http://127.0.0.1:${metricsPort}/metrics`)
  expect(response.status).toBe(200)
  expect(response.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/)
  return response.text()
})

interface Sample {
  readonly name: string
  readonly labels: Record<string, string>
  readonly value: number
}

/** The samples of a scrape, parsed (label values unescaped). */
const samplesOf = (text: string): Array<Sample> =>
  text.split("\n").filter((line) => line !== "" && !line.startsWith("#")).map((line) => {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (match === null) throw new Error(`not a sample line: ${line}`)
    const labels: Record<string, string> = {}
    for (const [, key, value] of (match[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[key!] = value!.replace(/\\n/g, "\n").replace(/\\"/g, "\"").replace(/\\\\/g, "\\")
    }
    return { name: match[1]!, labels, value: Number(match[3]) }
  })

/** A sample's value (0 when absent): `labels` must all match. */
const valueOf = (samples: ReadonlyArray<Sample>, name: string, labels: Record<string, string> = {}) =>
  samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0)

/** `promtool check metrics`: the exposition as Prometheus' own parser (and linter) reads it. */
const promtool = (text: string) => {
  const run = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" })
  if (run.error !== undefined) throw new Error(`promtool could not be run (install Debian's prometheus package): ${run.error.message}`)
  return { status: run.status, output: `${run.stdout}${run.stderr}` }
}

layer(
  TestApp.layer({
    METRICS_PORT: String(metricsPort),
    HTTP_MAX_BODY_BYTES: String(maxBody),
    AUTH_RATE_LIMIT_PER_EMAIL: "2",
    WS_TYPING_PER_SECOND: "1"
  }),
  { excludeTestServices: true }
)("metrics", (it) => {
  it.scoped("a scrape after real traffic passes promtool, and the counters moved by exactly what the traffic did", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const { conversationId, trainer, user } = yield* pair
      const u = yield* connect(user.token)
      const t = yield* connect(trainer.token)
      yield* u.request("joinConversation", { conversationId })
      yield* t.request("joinConversation", { conversationId })
      const before = samplesOf(yield* scrape)

      // REST: three sends (one a retry of another), a 413, a 429, an unknown route; WebSocket: sends, a read
      // receipt, a frame that is not JSON, an unknown event, typing past its limit.
      for (const [content, id] of [["rest one", "r-1"], ["rest two", "r-2"], ["rest one again", "r-1"]] as const) {
        const sent = yield* send(user.token, conversationId, content, id)
        expect([200, 201]).toContain(sent.status)
      }
      const tooLarge = yield* server.request("POST", "/chat/messages", {
        token: user.token,
        raw: JSON.stringify({ conversationId, content: "x".repeat(maxBody * 2) }),
        headers: { "content-type": "application/json" }
      })
      expect(tooLarge.status).toBe(413)
      const email = uniqueEmail("limited")
      const logins: Array<number> = []
      for (let i = 0; i < 3; i++) {
        logins.push((yield* server.request("POST", "/auth/login", { body: { email, password: "wrong password 1" } })).status)
      }
      expect(logins.at(-1)).toBe(429)
      expect((yield* server.request("GET", `/no/such/${conversationId}`)).status).toBe(404)

      // WebSocket: two sends, a frame that is not JSON, an unknown event, typing past its limit.
      for (const content of ["ws one", "ws two"]) {
        expect((yield* u.request("sendMessage", { conversationId, content, clientMessageId: content })).event).toBe("ack")
      }
      yield* t.next(is("newMessage", (m) => m.content === "ws two"))
      // Socket.IO: one send (without clientMessageId, as the original's apps send).
      const io = yield* connectIo(user.token)
      const ioAck = yield* io.request("sendMessage", { conversationId, content: "from socket.io" })
      expect(ioAck.message.content).toBe("from socket.io")
      yield* t.next(is("newMessage", (m) => m.content === "from socket.io"))
      // The trainer answers: the user's Socket.IO connection, in no room, is notified.
      expect((yield* t.request("sendMessage", { conversationId, content: "answer", clientMessageId: "t-1" })).event).toBe("ack")
      yield* io.next(isEvent("newMessageNotification", (n) => n.message.content === "answer"))
      // A read receipt: the trainer reads everything so far.
      expect((yield* t.request("markAsRead", { conversationId })).event).toBe("ack")
      yield* u.next(is("messageRead"))
      yield* u.raw("{ not json")
      yield* u.next(is("error", (e) => e.code === "BadJson"))
      expect((yield* u.request(`no-such-event-${user.id}`, {})).data.code).toBe("UnknownEvent")
      yield* u.send("typing", { conversationId, isTyping: true })
      yield* u.send("typing", { conversationId, isTyping: true })
      yield* u.send("typing", { conversationId, isTyping: true })
      yield* u.next(is("error", (e) => e.code === "RateLimited"))

      const text = yield* scrape
      const checked = promtool(text)
      expect(checked.output).toBe("")
      expect(checked.status).toBe(0)
      const after = samplesOf(text)
      const moved = (name: string, labels: Record<string, string> = {}) =>
        valueOf(after, name, labels) - valueOf(before, name, labels)

      // The message path.
      expect(moved("chat_messages_sent_total", { door: "rest" })).toBe(2)
      expect(moved("chat_messages_sent_total", { door: "websocket" })).toBe(3)
      expect(moved("chat_send_duration_seconds_count", { door: "rest" })).toBe(3)
      expect(moved("chat_send_duration_seconds_count", { door: "websocket" })).toBe(3)
      expect(moved("chat_messages_sent_total", { door: "socketio" })).toBe(1)
      expect(moved("chat_send_duration_seconds_count", { door: "socketio" })).toBe(1)
      // Seven sends, one of them a retry of a stored message: seven appended items, in one or more statements.
      expect(moved("chat_append_batch_size_sum")).toBe(7)
      expect(moved("chat_append_batch_size_count")).toBeGreaterThanOrEqual(1)
      expect(moved("chat_append_duration_seconds_count")).toBe(moved("chat_append_batch_size_count"))
      // Each of the six new messages reached the room's two sockets once (the retry's second announcement,
      // none); the trainer's answer also reached the user's Socket.IO connection as a notification.
      expect(moved("chat_messages_delivered_total", { kind: "room" })).toBe(2 * 6)
      expect(moved("chat_messages_delivered_total", { kind: "notification" })).toBe(1)
      expect(moved("chat_delivery_lag_seconds_count")).toBe(6)
      expect(moved("chat_bus_published_total", { event: "MessageCreated" })).toBe(7)
      expect(moved("chat_bus_published_total", { event: "MessagesRead" })).toBe(1)
      expect(moved("chat_frames_received_total", { transport: "websocket", event: "markAsRead" })).toBe(1)

      // REST requests and refusals.
      expect(moved("chat_http_request_duration_seconds_count", { method: "POST", route: "/chat/messages", status_class: "2xx" })).toBe(3)
      // The 413 was answered by the listener's guard, before any handler: a refusal, not a handled request.
      expect(moved("chat_http_request_duration_seconds_count", { method: "POST", route: "/chat/messages", status_class: "4xx" })).toBe(0)
      expect(moved("chat_http_request_duration_seconds_count", { method: "POST", route: "/auth/login", status_class: "4xx" })).toBe(3)
      expect(moved("chat_http_request_duration_seconds_count", { route: "unmatched" })).toBe(1)
      expect(moved("chat_http_refused_total", { status: "413", reason: "body_too_large" })).toBe(1)
      expect(moved("chat_http_refused_total", { status: "429", reason: "rate_limited" })).toBe(1)
      // The third login was refused by one of the login limits (per e-mail, per address and e-mail).
      const loginRefusals = after.filter((s) => s.name === "chat_rate_limited_total" && s.labels.bucket!.startsWith("login:"))
        .map((s) => s.value - valueOf(before, s.name, s.labels))
      expect(loginRefusals.reduce((a, b) => a + b, 0)).toBe(1)

      // Sockets and frames.
      expect(valueOf(after, "chat_connections", { transport: "websocket" })).toBe(2)
      expect(valueOf(after, "chat_connections", { transport: "socketio" })).toBe(1)
      expect(moved("chat_frames_received_total", { transport: "socketio", event: "sendMessage" })).toBe(1)
      expect(moved("chat_frames_received_total", { transport: "websocket", event: "sendMessage" })).toBe(3)
      expect(moved("chat_frames_received_total", { transport: "websocket", event: "typing" })).toBe(3)
      expect(moved("chat_frames_received_total", { transport: "websocket", event: "invalid" })).toBe(2)
      expect(moved("chat_error_frames_total", { code: "BadJson" })).toBe(1)
      expect(moved("chat_error_frames_total", { code: "UnknownEvent" })).toBe(1)
      // Typing's burst is two: the third was refused.
      expect(moved("chat_error_frames_total", { code: "RateLimited" })).toBe(1)
      expect(moved("chat_rate_limited_total", { bucket: "ws:typing" })).toBe(1)

      // The rest is there: the database, readiness, the runtime.
      expect(valueOf(after, "chat_ready")).toBe(1)
      expect(valueOf(after, "chat_db_migrations_applied")).toBeGreaterThanOrEqual(10)
      expect(valueOf(after, "chat_db_pool_connections", { state: "idle" }) + valueOf(after, "chat_db_pool_connections", { state: "in_use" }))
        .toBeGreaterThanOrEqual(1)
      expect(valueOf(after, "process_resident_memory_bytes")).toBeGreaterThan(0)
      expect(after.some((s) => s.name === "nodejs_eventloop_utilization")).toBe(true)
      expect(after.some((s) => s.name === "nodejs_gc_duration_seconds_count")).toBe(true)

      // Closes are counted by code once the sockets go.
      yield* Effect.promise(() => new Promise<void>((resolve) => (u.socket.once("close", () => resolve()), u.socket.close(1000))))
      yield* Effect.sleep("100 millis")
      const closed = samplesOf(yield* scrape)
      expect(valueOf(closed, "chat_connections_closed_total", { transport: "websocket", code: "1000" }) -
        valueOf(after, "chat_connections_closed_total", { transport: "websocket", code: "1000" })).toBe(1)
      expect(valueOf(closed, "chat_connections", { transport: "websocket" })).toBe(1)
    }))

  it.scoped("no label value carries an id, an address or anything a client wrote", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const { conversationId, trainer, user } = yield* pair
      const marker = "client-chosen-text"
      const u = yield* connect(user.token)
      yield* u.request("joinConversation", { conversationId })
      yield* u.request("sendMessage", { conversationId, content: marker, clientMessageId: marker })
      yield* u.request(marker, { conversationId })
      yield* u.send("sendMessage", { conversationId: marker, content: marker })
      yield* server.request("GET", `/chat/conversations/${conversationId}/messages?limit=${marker}`, { token: user.token })
      yield* server.request("GET", `/users/${trainer.id}`, { token: user.token })
      yield* server.request("DELETE", `/${marker}/${user.id}`, { token: user.token })
      yield* server.request("POST", "/auth/login", { body: { email: `${marker}@test.local`, password: marker } })
      yield* Effect.sleep("100 millis")

      const samples = samplesOf(yield* scrape)
      const values = samples.flatMap((s) => Object.values(s.labels))
      const uuid = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i
      for (const value of values) {
        expect(value).not.toMatch(uuid)
        expect(value).not.toContain(marker)
        expect(value).not.toContain("@")
        for (const id of [conversationId, user.id, trainer.id]) expect(value).not.toContain(id)
      }
      // Routes are templates.
      const routes = new Set(samples.filter((s) => s.name === "chat_http_request_duration_seconds_count").map((s) => s.labels.route))
      expect(routes).toContain("/chat/conversations/:id/messages")
      expect(routes).toContain("/users/:id")
      expect(routes).toContain("unmatched")
    }))

  it.effect("every metric exposed is documented in the README's Operating table", () =>
    Effect.gen(function*() {
      const readme = readFileSync("README.md", "utf8")
      const documented = new Set([...readme.matchAll(/^\| `([a-z0-9_:]+)`/gm)].map((m) => m[1]!))
      const exposed = new Set(
        samplesOf(yield* scrape).map((s) => s.name.replace(/_(bucket|sum|count)$/, "")).filter((name) => !name.startsWith("nodejs_heap_space_size_"))
      )
      const undocumented = [...exposed].filter((name) => !documented.has(name))
      expect(undocumented).toEqual([])
    }))
})
