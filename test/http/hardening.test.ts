import { describe, expect, it, layer } from "@effect/vitest"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import * as Net from "node:net"
import { describeThrow } from "../../src/server/Guards.js"
import * as UwsHttpServer from "../../src/server/HttpServer.js"
import { InFlight } from "../../src/server/InFlight.js"
import * as Uws from "../../src/server/Uws.js"
import { pair } from "../support/Chat.js"
import * as TestApp from "../support/TestApp.js"
import { type RequestOptions, TestServer } from "../support/TestApp.js"
import { register } from "../support/Users.js"

const deep = (levels: number) => "[".repeat(levels) + "]".repeat(levels)

/** Frames of a stack trace in one log line (logfmt escapes the newlines). */
const stackFrames = (line: string) => (line.match(/\bat [^ ]+ \(|\bat (file|node):/g) ?? []).length

const logs: Array<string> = []
layer(TestApp.layer({}, { logs }), { excludeTestServices: true })("hostile bodies", (it) => {
  it.effect("JSON nested deeper than 64 levels is a 400 naming the rule on every route, fast ones included; no stack in the log", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const { conversationId, user } = yield* pair
      const bodies = [
        { method: "POST", path: "/auth/login", raw: `{"email":${deep(5000)},"password":"x"}` },
        { method: "POST", path: "/auth/register", raw: `{"email":"a@b.c","password":${deep(5000)}}` },
        { method: "PATCH", path: `/users/${user.id}`, raw: `{"firstName":${deep(3000)}}`, token: user.token },
        { method: "POST", path: "/chat/messages", raw: `{"conversationId":"${conversationId}","content":${deep(5000)}}`, token: user.token },
        { method: "POST", path: "/chat/messages", raw: `{"conversationId":"${conversationId}","content":"x","extra":${deep(65)}}`, token: user.token },
        { method: "POST", path: "/chat/%6Dessages", raw: `{"content":${deep(5000)}}`, token: user.token },
        { method: "POST", path: "/chat/conversations", raw: `{"participantId":${"{\"a\":".repeat(4000)}1${"}".repeat(4000)}}`, token: user.token }
      ]
      for (const { method, path, raw, token } of bodies) {
        const reply = yield* server.request(method, path, {
          raw,
          headers: { "content-type": "application/json" },
          ...(token === undefined ? {} : { token })
        })
        expect(reply.status, `${method} ${path}`).toBe(400)
        expect(reply.body, `${method} ${path}`).toEqual({
          _tag: "MalformedBody",
          message: "The request body nests deeper than 64 levels"
        })
      }
      // 64 levels are fine (and get the usual decode error for a wrong type).
      const ok = yield* server.request("POST", "/auth/login", {
        raw: `{"email":${deep(63)},"password":"x"}`,
        headers: { "content-type": "application/json" }
      })
      expect(ok.status).toBe(400)
      expect(ok.body._tag).toBe("HttpApiDecodeError")
      // The server still serves.
      expect((yield* server.request("GET", "/health")).status).toBe(200)
      for (const line of logs) {
        expect(line).not.toContain("RangeError")
        expect(stackFrames(line), line.slice(0, 300)).toBeLessThan(6)
      }
    }))

  it.effect("a body announced beyond what is drained (70 MB) is a 413 at once on every door, and nothing is logged as a throw", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const { user } = yield* pair
      const port = Number(new URL(server.url).port)
      logs.length = 0
      for (const [path, type] of [["/auth/login", "application/json"], ["/chat/messages", "application/json"], ["/chat/attachments?fileName=a.txt", "text/plain"]]) {
        const reply = yield* rawExchange(port, [
          `POST ${path} HTTP/1.1`,
          "host: localhost",
          `authorization: Bearer ${user.token}`,
          `content-type: ${type}`,
          "content-length: 70000000",
          "",
          "abc"
        ].join("\r\n"))
        expect(reply.text.split("\r\n")[0], path).toBe("HTTP/1.1 413 Payload Too Large")
        expect(reply.closed, path).toBe(true)
      }
      expect((yield* server.request("GET", "/health")).status).toBe(200)
      expect(logs.filter((line) => /threw|must not be accessed/.test(line))).toEqual([])
    }))

  it.effect("no 400 prints a received value: long passwords, wrong types, bad emails", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const secret = "s3cr3t-".repeat(60)
      const user = yield* register("echo")
      const attempts = [
        { path: "/auth/login", body: { email: "someone@test.local", password: secret } },
        { path: "/auth/login", body: { email: `${secret}@x`, password: "p" } },
        { path: "/auth/login", body: { email: "someone@test.local", password: { secret } } },
        { path: "/auth/register", body: { email: "new@test.local", password: secret, firstName: "A", lastName: "B" } },
        { path: "/auth/register", body: { email: "new@test.local", password: "long enough pw", firstName: secret, lastName: "B" } },
        { path: "/auth/register", body: { email: ["s3cr3t-"], password: 12345678901, firstName: "A", lastName: "B" } },
        { path: "/auth/login", body: [secret] },
        { path: "/auth/login", body: secret }
      ]
      for (const { body, path } of attempts) {
        const reply = yield* server.request("POST", path, { body })
        expect(reply.status, path).toBe(400)
        const text = JSON.stringify(reply.body)
        expect(text, text).not.toContain("s3cr3t")
        expect(text, text).not.toContain("12345678901")
        expect(text).not.toContain("actual")
      }
      const patch = yield* server.request("PATCH", `/users/${user.id}`, {
        token: user.token,
        body: { password: secret, currentPassword: user.password }
      })
      expect(patch.status).toBe(400)
      expect(JSON.stringify(patch.body)).not.toContain("s3cr3t")
      // The issues still name the field.
      const login = yield* server.request("POST", "/auth/login", { body: { email: "someone@test.local", password: secret } })
      expect(login.body.issues).toEqual([expect.objectContaining({ path: ["password"] })])

      // Query and path parameters, numbers from text, a body sent as text/plain, unknown routes: the same.
      const { conversationId } = yield* pair
      const requests: ReadonlyArray<readonly [string, string, RequestOptions, number]> = [
        ["GET", "/chat/conversations?limit=s3cr3t", { token: user.token }, 400],
        ["GET", `/chat/conversations/${conversationId}/messages?beforeSeq=s3cr3t%20into%20x`, { token: user.token }, 400],
        ["GET", "/users/s3cr3t", { token: user.token }, 400],
        ["POST", "/auth/login", { raw: JSON.stringify({ email: "a@b.cd", password: "s3cr3t" }), headers: { "content-type": "text/plain" } }, 400],
        ["GET", "/no/such/s3cr3t", {}, 404]
      ]
      for (const [method, path, options, status] of requests) {
        const reply = yield* server.request(method, path, options)
        const text = JSON.stringify(reply.body)
        expect(reply.status, `${path}: ${text}`).toBe(status)
        expect(text, text).not.toContain("s3cr3t")
      }
    }))
})

/** Raw bytes to the server; what comes back until it closes (or a pause), and whether it closed. */
const rawExchange = (port: number, request: string, waitMs = 1500) =>
  Effect.async<{ readonly text: string; readonly closed: boolean }>((resume) => {
    const socket = Net.connect(port, "127.0.0.1", () => socket.write(request))
    let text = ""
    let settled = false
    const settle = (closed: boolean) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      resume(Effect.succeed({ text, closed }))
    }
    const timer = setTimeout(() => settle(false), waitMs)
    socket.on("data", (chunk) => void (text += chunk.toString("latin1")))
    socket.on("close", () => settle(true))
    socket.on("error", () => settle(true))
  })

interface Sent {
  readonly status?: number
  readonly tag?: string
  readonly error?: string
}

/**
 * A client in a process of its own (in this one, it would share the server's event loop, which hides the
 * race): sends a body of `size` bytes whole, with node:http or fetch, before reading the answer.
 */
const clientScript = `
const Http = require("node:http")
const [url, mode, size, kind, headersJson] = process.argv.slice(1)
const headers = JSON.parse(headersJson)
const body = kind === "json" ? Buffer.from(JSON.stringify({ content: "x".repeat(Number(size)) })) : Buffer.alloc(Number(size), 1)
const done = (result) => { process.stdout.write(JSON.stringify(result)); process.exit(0) }
const tagOf = (text) => { try { return JSON.parse(text)._tag } catch { return undefined } }
if (mode === "fetch") {
  fetch(url, { method: "POST", headers, body }).then(async (r) => done({ status: r.status, tag: tagOf(await r.text()) }), (e) => done({ error: String(e.cause?.code ?? e) }))
} else {
  const request = Http.request(url, { method: "POST", headers: { ...headers, "content-length": body.byteLength } }, (response) => {
    let text = ""
    response.on("data", (c) => text += c)
    response.on("end", () => done({ status: response.statusCode, tag: tagOf(text) }))
    response.on("error", (e) => done({ error: e.code }))
  })
  request.on("error", (e) => done({ error: e.code }))
  if (headers.expect === "100-continue") request.on("continue", () => request.end(body))
  else request.end(body)
}`

const postWhole = (
  url: string,
  options: { readonly mode: "node" | "fetch"; readonly size: number; readonly kind: "json" | "bytes"; readonly headers: Record<string, string> }
) =>
  Effect.async<Sent>((resume) => {
    const child = spawn(process.execPath, ["-e", clientScript, url, options.mode, String(options.size), options.kind, JSON.stringify(options.headers)], {
      stdio: ["ignore", "pipe", "inherit"]
    })
    let out = ""
    child.stdout.on("data", (chunk: Buffer) => void (out += chunk.toString()))
    child.on("exit", () => resume(Effect.sync(() => JSON.parse(out) as Sent)))
  })

layer(TestApp.layer({ ATTACHMENT_MAX_DOCUMENT_BYTES: String(25 * 1024 * 1024) }), { excludeTestServices: true })("the wire", (it) => {
  it.effect("an over-limit body gets its 413 however the client sends it: no EPIPE, no reset (node:http, fetch)", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const { user } = yield* pair
      const auth = { authorization: `Bearer ${user.token}`, "content-type": "application/json" }
      for (const size of [1_500_000, 20_000_000]) {
        for (const path of ["/auth/login", "/chat/messages", "/chat/%6Dessages"]) {
          for (const mode of ["node", "fetch"] as const) {
            const sent = yield* postWhole(server.url + path, { mode, size, kind: "json", headers: auth })
            expect({ path, size, mode, ...sent }).toEqual({ path, size, mode, status: 413, tag: "PayloadTooLarge" })
          }
        }
      }
      // A 40 MB upload, beyond the largest file allowed.
      for (const mode of ["node", "fetch"] as const) {
        const upload = yield* postWhole(`${server.url}/chat/attachments?fileName=big.pdf`, {
          mode,
          size: 40_000_000,
          kind: "bytes",
          headers: { authorization: `Bearer ${user.token}`, "content-type": "application/pdf" }
        })
        expect({ mode, ...upload }).toEqual({ mode, status: 413, tag: "PayloadTooLarge" })
      }
      // Expect: 100-continue with a length over the limit: the client gets its 413 too (uWS itself answers
      // 100 Continue before any handler runs, so the body is sent and drained).
      const expecting = yield* postWhole(`${server.url}/chat/messages`, {
        mode: "node",
        size: 2_000_000,
        kind: "json",
        headers: { ...auth, expect: "100-continue" }
      })
      expect(expecting).toEqual({ status: 413, tag: "PayloadTooLarge" })
      // The server is fine.
      expect((yield* server.request("GET", "/health")).status).toBe(200)
    }), 120_000)

  it.effect("two Content-Length headers are a 400 and the connection closes (RFC 9112 §6.3); no uWebSockets header", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const port = Number(new URL(server.url).port)
      for (const path of ["/auth/login", "/chat/messages"]) {
        const reply = yield* rawExchange(port, [
          `POST ${path} HTTP/1.1`,
          "host: localhost",
          "content-type: application/json",
          "content-length: 2",
          "content-length: 40",
          "",
          "{}"
        ].join("\r\n"))
        expect(reply.text.split("\r\n")[0], path).toBe("HTTP/1.1 400 Bad Request")
        expect(reply.text).toContain(`"_tag":"MalformedRequest"`)
        expect(reply.closed).toBe(true)
      }
      const health = yield* server.request("GET", "/health")
      expect(health.headers.get("uwebsockets")).toBeNull()
      const raw = yield* rawExchange(port, "GET /health HTTP/1.1\r\nhost: localhost\r\n\r\n", 500)
      expect(raw.text.toLowerCase()).not.toContain("uwebsockets")
    }))
})

layer(TestApp.layer(), { excludeTestServices: true })("HEAD", (it) => {
  it.effect("HEAD answers the GET's status and length without a body, a 204 has no length, and the connection stays usable", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const { user } = yield* pair
      const port = Number(new URL(server.url).port)
      const get = yield* server.request("GET", "/users/me", { token: user.token })
      const length = JSON.stringify(get.body).length
      // A HEAD, then a GET on the same connection (as a proxy's keep-alive pool does).
      const reply = yield* rawExchange(port, [
        `HEAD /users/me HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer ${user.token}\r\n\r\n`,
        "GET /health HTTP/1.1\r\nhost: localhost\r\n\r\n"
      ].join(""), 800)
      const [head, rest] = reply.text.split(/\r\n\r\n/, 2)
      expect(head!.split("\r\n")[0]).toBe("HTTP/1.1 200 OK")
      expect(head!.toLowerCase()).toContain(`content-length: ${length}`)
      // No body after the HEAD's head: the next thing on the wire is the GET's answer.
      expect(rest!.startsWith("HTTP/1.1 200 OK"), rest).toBe(true)
      expect(reply.text).toContain(`{"status":"ok"}`)
      expect(reply.closed).toBe(false)
      // A CORS preflight: 204, which carries no Content-Length (RFC 9110 §8.6), and the connection goes on.
      const preflight = yield* rawExchange(port, [
        "OPTIONS /chat/messages HTTP/1.1\r\nhost: localhost\r\norigin: https://app.example\r\n" +
        "access-control-request-method: POST\r\n\r\n",
        "GET /health HTTP/1.1\r\nhost: localhost\r\n\r\n"
      ].join(""), 800)
      const [preflightHead, afterPreflight] = preflight.text.split(/\r\n\r\n/, 2)
      expect(preflightHead!.split("\r\n")[0]).toBe("HTTP/1.1 204 No Content")
      expect(preflightHead!.toLowerCase()).not.toContain("content-length")
      expect(afterPreflight!.startsWith("HTTP/1.1 200 OK"), afterPreflight).toBe(true)
    }))
})

layer(TestApp.layer({ HTTP_MAX_IN_FLIGHT: "4" }), { excludeTestServices: true })("slow bodies", (it) => {
  it.effect("clients that send a head and dribble their bodies hold no in-flight slot: other requests go on", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const { conversationId, user } = yield* pair
      const port = Number(new URL(server.url).port)
      // Twice the limit of connections, each with a body promised and one byte of it sent.
      const held = yield* Effect.forEach(Array.from({ length: 8 }, (_, i) => i), (i) =>
        Effect.acquireRelease(
          Effect.async<Net.Socket>((resume) => {
            const socket = Net.connect(port, "127.0.0.1", () => {
              const path = i % 2 === 0 ? "/auth/login" : "/chat/messages"
              socket.write(`POST ${path} HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer ${user.token}\r\n` +
                "content-type: application/json\r\ncontent-length: 100\r\n\r\n{")
              resume(Effect.succeed(socket))
            })
          }),
          (socket) => Effect.sync(() => socket.destroy())
        ))
      yield* Effect.sleep("200 millis")
      expect(held).toHaveLength(8)
      expect((yield* server.request("GET", "/health")).status).toBe(200)
      expect((yield* server.request("GET", "/users/me", { token: user.token })).status).toBe(200)
      const sent = yield* server.request("POST", "/chat/messages", {
        token: user.token,
        body: { conversationId, content: "still here", clientMessageId: "slow-bodies-1" }
      })
      expect(sent.status).toBe(201)
    }).pipe(Effect.scoped))
})

layer(TestApp.layer({ HTTP_MAX_IN_FLIGHT: "0" }), { excludeTestServices: true })("overloaded", (it) => {
  it.effect("503 Overloaded: Retry-After is jittered and grows with the number refused", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const waits: Array<number> = []
      for (let i = 0; i < 60; i++) {
        const reply = i % 2 === 0
          ? yield* server.request("GET", "/users/me")
          : yield* server.request("POST", "/chat/messages", { body: {} })
        expect(reply.status).toBe(503)
        expect(reply.body._tag).toBe("Overloaded")
        waits.push(Number(reply.headers.get("retry-after")))
      }
      expect(waits.every((wait) => Number.isInteger(wait) && wait >= 1)).toBe(true)
      expect(new Set(waits).size).toBeGreaterThan(3)
      const mean = (xs: Array<number>) => xs.reduce((a, b) => a + b, 0) / xs.length
      expect(mean(waits.slice(-10))).toBeGreaterThan(mean(waits.slice(0, 3)) * 2)
    }))
})

describe("the last-resort guard", () => {
  it.effect("a throw in the server's uWS callback is a 500 without stack and one report, never an exit; a dying app a 500", () =>
    Effect.scoped(Effect.gen(function*() {
      const uws = yield* Uws.load
      const app = uws.App()
      const reports: Array<string> = []
      const inFlight = new InFlight(4)
      const server = UwsHttpServer.make(app, { _tag: "TcpAddress", hostname: "127.0.0.1", port: 0 }, {
        maxBodyBytes: 1024,
        inFlight,
        sendTimeoutMs: 1000,
        // Asked in uWS's callback, once the request holds its in-flight slot.
        streamedBody: () => {
          throw new RangeError("Maximum call stack size exceeded")
        },
        onThrow: (error) => void reports.push(describeThrow(error))
      })
      yield* server.serve(Effect.die(new RangeError("Maximum call stack size exceeded")))
      const socket = yield* Effect.acquireRelease(
        Effect.async<Uws.us_listen_socket>((resume) => void app.listen("127.0.0.1", 0, (s) => {
          if (s) resume(Effect.succeed(s))
        })),
        (s) => Effect.sync(() => uws.us_listen_socket_close(s))
      )
      const url = `http://127.0.0.1:${uws.us_socket_local_port(socket)}`
      const dying = yield* Effect.promise(() => fetch(`${url}/x`))
      expect(dying.status).toBe(500)
      const thrown = yield* Effect.promise(() => fetch(`${url}/x`, { method: "POST", body: "{}" }))
      expect(thrown.status).toBe(500)
      expect(yield* Effect.promise(() => thrown.json())).toEqual({
        _tag: "InternalServerError",
        message: "Something went wrong on our side"
      })
      expect(reports).toEqual(["RangeError: Maximum call stack size exceeded"])
      expect(inFlight.size).toBe(0)
    })))
})
