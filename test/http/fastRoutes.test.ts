import { HttpApp } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { expect, layer } from "@effect/vitest"
import { ConfigProvider, Effect, FiberSet, Layer, Logger, LogLevel } from "effect"
import * as Net from "node:net"
import { Messages } from "../../src/domain/chat/Messages.js"
import { makeHttpApp } from "../../src/http/Server.js"
import { serveFastRoutes } from "../../src/server/FastRoutes.js"
import { InFlight } from "../../src/server/InFlight.js"
import * as Uws from "../../src/server/Uws.js"
import { pair } from "../support/Chat.js"
import * as TestApp from "../support/TestApp.js"
import { TestServer } from "../support/TestApp.js"
import { createUser, signInAdmin } from "../support/Users.js"

/** A request, sent the same way to each side. */
interface Call {
  readonly method: "GET" | "POST"
  readonly path: string
  readonly token?: string | undefined
  readonly headers?: Record<string, string>
  /** A string is sent as JSON unless `headers` say otherwise; bytes go without content type. */
  readonly body?: string | Uint8Array
}

/** What a client sees of an answer: the body as text, so that key order counts too. */
interface Seen {
  readonly status: number
  readonly headers: Record<string, string>
  readonly body: string
}

const compared = ["access-control-allow-origin", "access-control-expose-headers", "content-type", "retry-after", "vary"]
/** Over the wire, the answers of the HttpServer itself count too (413 and 503 close or not, and their length). */
const comparedOnTheWire = [...compared, "connection", "content-length"]

const seenOf = (response: Response, names: ReadonlyArray<string>) =>
  Effect.promise(async (): Promise<Seen> => {
    const headers: Record<string, string> = {}
    for (const name of names) {
      const value = response.headers.get(name)
      if (value !== null) headers[name] = value
    }
    return { status: response.status, headers, body: await response.text() }
  })

const requestInit = (call: Call): RequestInit => {
  const headers: Record<string, string> = {}
  if (call.token !== undefined) headers.authorization = `Bearer ${call.token}`
  if (typeof call.body === "string") headers["content-type"] = "application/json"
  Object.assign(headers, call.headers)
  return { method: call.method, headers, ...(call.body === undefined ? {} : { body: call.body }) }
}

/** The same path, which uWS does not match to a fast route but the HttpApp's router decodes to the same route. */
const genericPath = (path: string) => path.replace(/\/messages(?=$|\?)/, "/%6Dessages")

/**
 * Three ways to the same running app (same database, same settings): the fast routes over the wire, the
 * generic path over the wire (HttpServer + HttpApp), and the HttpApp alone as a plain web handler.
 */
const makeSides = (config: Record<string, string>) =>
  Effect.gen(function*() {
    const server = yield* TestServer
    const provider = ConfigProvider.fromMap(new Map(Object.entries(config)))
    const httpApp = yield* makeHttpApp.pipe(Effect.withConfigProvider(provider))
    const runtime = yield* Effect.runtime<Layer.Layer.Success<typeof NodeHttpServer.layerContext>>().pipe(
      Effect.provide(NodeHttpServer.layerContext),
      Logger.withMinimumLogLevel(LogLevel.Warning)
    )
    const handler = HttpApp.toWebHandlerRuntime(runtime)(httpApp)

    const fast = (call: Call) =>
      Effect.flatMap(
        Effect.promise(() => fetch(server.url + call.path, requestInit(call))),
        (response) => seenOf(response, comparedOnTheWire)
      )
    const wire = (call: Call) => fast({ ...call, path: genericPath(call.path) })
    const web = (call: Call) =>
      Effect.flatMap(
        Effect.promise(() => handler(new Request(`http://localhost${call.path}`, requestInit(call)))),
        (response) => seenOf(response, compared)
      )

    /** The fast route answers as the generic path does, over the wire and through the HttpApp alone. */
    const expectSame = (call: Call) =>
      Effect.gen(function*() {
        const fromFast = yield* fast(call)
        const fromWire = yield* wire(call)
        const fromWeb = yield* web(call)
        const label = `${call.method} ${call.path} ${typeof call.body === "string" ? call.body.slice(0, 80) : ""}`
        expect(fromFast, label).toEqual(fromWire)
        expect({ ...fromFast, headers: pick(fromFast.headers, compared) }, label).toEqual(fromWeb)
        return fromFast
      })

    return { server, fast, wire, web, expectSame } as const
  })

const pick = (headers: Record<string, string>, names: ReadonlyArray<string>) =>
  Object.fromEntries(Object.entries(headers).filter(([name]) => names.includes(name)))

const origins = "https://app.example, https://admin.example"
const mainConfig = { FRONTEND_URL: origins, HTTP_MAX_BODY_BYTES: "8192" }
const logs: Array<string> = []

layer(TestApp.layer(mainConfig, { logs }), { excludeTestServices: true })("fast routes", (it) => {
  it.effect("send: 201, then 200 with the original on a retry, whichever path stored it", () =>
    Effect.gen(function*() {
      const { expectSame, fast, web, wire } = yield* makeSides(mainConfig)
      const { conversationId, user } = yield* pair
      const sendCall = (clientMessageId: string, headers: Record<string, string> = {}): Call => ({
        method: "POST",
        path: "/chat/messages",
        token: user.token,
        headers,
        body: JSON.stringify({ conversationId, content: `  hello ${clientMessageId}  `, clientMessageId })
      })

      const created = yield* fast(sendCall("f1", { origin: "https://app.example" }))
      expect(created.status).toBe(201)
      expect(JSON.parse(created.body)).toMatchObject({ conversationId, content: "hello f1", clientMessageId: "f1" })
      const retried = yield* expectSame(sendCall("f1", { origin: "https://app.example" }))
      expect(retried.status).toBe(200)
      expect(retried.body).toBe(created.body)

      // Stored by the generic path: the fast route's retry gives the same original.
      const generic = yield* wire(sendCall("g1"))
      expect(generic.status).toBe(201)
      const fastRetry = yield* fast(sendCall("g1"))
      expect(fastRetry).toEqual({ ...generic, status: 200 })
      const viaWeb = yield* web(sendCall("w1", { origin: "https://admin.example" }))
      const fastCreated = yield* fast(sendCall("w2", { origin: "https://admin.example" }))
      expect(viaWeb.status).toBe(201)
      expect(pick(fastCreated.headers, compared)).toEqual(viaWeb.headers)
      expect(Object.keys(JSON.parse(fastCreated.body))).toEqual(Object.keys(JSON.parse(viaWeb.body)))

      // Without clientMessageId every send is new: the same shape, the next seq.
      const plain = { method: "POST", path: "/chat/messages", token: user.token } as const
      const a = yield* fast({ ...plain, body: JSON.stringify({ conversationId, content: "a" }) })
      const b = yield* wire({ ...plain, body: JSON.stringify({ conversationId, content: "b" }) })
      expect(a.status).toBe(201)
      expect(b.status).toBe(201)
      expect(JSON.parse(b.body).seq).toBe(JSON.parse(a.body).seq + 1)
      expect(Object.keys(JSON.parse(a.body))).toEqual(Object.keys(JSON.parse(b.body)))
      expect(pick(a.headers, compared)).toEqual(pick(b.headers, compared))
    }))

  it.effect("send: every refusal is the generic path's, status, body and headers", () =>
    Effect.gen(function*() {
      const { expectSame, server } = yield* makeSides(mainConfig)
      const { conversationId, user } = yield* pair
      const stranger = yield* createUser("user")
      const admin = yield* signInAdmin
      const post = (body: string | Uint8Array | undefined, options: Partial<Call> = {}): Call => ({
        method: "POST",
        path: "/chat/messages",
        token: user.token,
        ...(body === undefined ? {} : { body }),
        ...options
      })
      const ok = (fields: Record<string, unknown>) => JSON.stringify({ conversationId, content: "hi", ...fields })
      // Valid JSON the schema refuses: a 400 that shows authentication and JSON parsing went through.
      const afterAuth = ok({ unexpected: true })
      const statuses: Array<number> = []
      const same = (call: Call) => Effect.map(expectSame(call), (seen) => void statuses.push(seen.status))

      // Authentication, before anything else.
      yield* same(post(ok({}), { token: undefined }))
      yield* same({ ...post("{"), token: undefined })
      yield* same(post(ok({}), { token: "not-a-jwt" }))
      yield* same(post(ok({}), { token: "", headers: { authorization: "Bearer " } }))
      yield* same(post(ok({}), { headers: { authorization: `Basic ${user.token}` } }))
      yield* same(post(afterAuth, { headers: { authorization: `bearer ${user.token}` } }))
      yield* same(post(afterAuth, { headers: { authorization: `Bearer   ${user.token}  ` } }))
      yield* same(post(ok({}), { headers: { authorization: `Bearer ${user.token}x` } }))
      // The body.
      yield* same(post("{"))
      yield* same(post(""))
      yield* same(post("null"))
      yield* same(post("[]"))
      yield* same(post("\"text\""))
      yield* same(post(`\uFEFF${afterAuth}`))
      yield* same(post(JSON.stringify({ conversationId })))
      yield* same(post(ok({ content: "   " })))
      yield* same(post(ok({ content: "x".repeat(4001) })))
      yield* same(post(ok({ content: 5 })))
      yield* same(post(ok({ type: "system" })))
      yield* same(post(ok({ type: 7 })))
      yield* same(post(ok({ extra: true })))
      yield* same(post(ok({ conversationId: "not-a-uuid", extra: 1, content: "" })))
      yield* same(post(ok({ clientMessageId: "" })))
      yield* same(post(ok({ clientMessageId: "k".repeat(65) })))
      // Content types: JSON whatever its parameters or case, none at all, or another (the generic route's).
      yield* same(post(afterAuth, { headers: { "content-type": "Application/JSON; charset=utf-8" } }))
      yield* same(post(new TextEncoder().encode(afterAuth)))
      yield* same(post(ok({}), { headers: { "content-type": "text/plain" } }))
      yield* same(post("a=1", { headers: { "content-type": "application/x-www-form-urlencoded" } }))
      // The conversation: unknown, a stranger's, an admin who is no participant, closed.
      yield* same(post(ok({ conversationId: crypto.randomUUID() })))
      yield* same(post(ok({}), { token: stranger.token }))
      yield* same(post(ok({}), { token: admin.token }))
      const closed = yield* server.request("PUT", `/chat/admin/conversations/${conversationId}/close`, {
        token: admin.token,
        body: { reason: "done" }
      })
      expect(closed.status).toBe(200)
      yield* same(post(ok({}), { headers: { origin: "https://admin.example" } }))
      yield* same(post(ok({}), { headers: { origin: "https://evil.example" } }))

      expect(statuses).toEqual([
        401, 401, 401, 401, 401, 400, 400, 401,
        400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 400,
        400, 400, 400, 400,
        404, 404, 403,
        409, 409
      ])
    }))

  it.effect("send: a body beyond HTTP_MAX_BODY_BYTES is refused (413) and the connection closed, as by the HttpServer", () =>
    Effect.gen(function*() {
      const { fast, server, wire } = yield* makeSides(mainConfig)
      const { conversationId, user } = yield* pair
      const big: Call = {
        method: "POST",
        path: "/chat/messages",
        token: user.token,
        body: JSON.stringify({ conversationId, content: "x".repeat(9000) })
      }
      const refused = yield* fast(big)
      expect(refused.status).toBe(413)
      expect(refused.headers.connection).toBe("close")
      expect(JSON.parse(refused.body)).toEqual({ _tag: "PayloadTooLarge", message: "The request body exceeds 8192 bytes" })
      expect(refused).toEqual(yield* wire(big))

      // Streamed without a length (chunked): cut off once it grows too big.
      const port = Number(new URL(server.url).port)
      const chunk = `{"content":"${"x".repeat(4500)}"}`
      const chunked = (path: string) =>
        rawExchange(port, [
          `POST ${path} HTTP/1.1`,
          "host: localhost",
          `authorization: Bearer ${user.token}`,
          "content-type: application/json",
          "transfer-encoding: chunked",
          "",
          `${Buffer.byteLength(chunk).toString(16)}\r\n${chunk}`,
          `${Buffer.byteLength(chunk).toString(16)}\r\n${chunk}`,
          "0",
          "",
          ""
        ].join("\r\n"))
      const fromFast = yield* chunked("/chat/messages")
      expect(fromFast.status).toBe(413)
      expect(fromFast).toEqual(yield* chunked("/chat/%6Dessages"))
    }))

  it.effect("history: pages, every parameter error, strangers and CORS, as the generic path answers them", () =>
    Effect.gen(function*() {
      const { expectSame, fast } = yield* makeSides(mainConfig)
      const { conversationId, trainer, user } = yield* pair
      const stranger = yield* createUser("user")
      const admin = yield* signInAdmin
      for (let i = 1; i <= 7; i++) {
        const sent = yield* fast({
          method: "POST",
          path: "/chat/messages",
          token: i % 2 === 0 ? trainer.token : user.token,
          body: JSON.stringify({ conversationId, content: `m${i}` })
        })
        expect(sent.status).toBe(201)
      }
      const get = (query: string, options: Partial<Call> = {}): Call => ({
        method: "GET",
        path: `/chat/conversations/${conversationId}/messages${query}`,
        token: user.token,
        ...options
      })
      const statuses: Array<number> = []
      const same = (call: Call) => Effect.map(expectSame(call), (seen) => void statuses.push(seen.status))

      const page = yield* expectSame(get("?limit=3", { headers: { origin: "https://app.example" } }))
      expect(JSON.parse(page.body)).toMatchObject({ hasMore: true, messages: [{ seq: 5 }, { seq: 6 }, { seq: 7 }] })
      for (
        const query of [
          "",
          "?beforeSeq=5&limit=2",
          "?afterSeq=2",
          "?afterSeq=2&beforeSeq=5",
          "?afterSeq=7",
          "?limit=100",
          "?limit=5&",
          "?&limit=2",
          "?limit=0",
          "?limit=1000",
          "?limit=abc",
          "?limit=2.5",
          "?limit=",
          "?limit",
          "?limit=1&limit=2",
          "?beforeSeq=-1",
          "?afterSeq=x&beforeSeq=y&limit=0",
          "?unknown=1",
          "?toString=1",
          "?limit=%32",
          "?limit=2+"
        ]
      ) yield* same(get(query))
      yield* same(get("", { token: trainer.token, headers: { origin: "https://evil.example" } }))
      yield* same(get("?limit=2", { token: admin.token }))
      yield* same(get("", { token: stranger.token }))
      yield* same(get("", { token: undefined }))
      yield* same(get("", { token: "expired.or.forged" }))
      yield* same({ ...get(""), path: `/chat/conversations/${crypto.randomUUID()}/messages` })
      yield* same({ ...get(""), path: `/chat/conversations/${conversationId.toUpperCase()}/messages?limit=1` })
      yield* same({ ...get("?limit=0"), path: "/chat/conversations/not-a-uuid/messages?limit=0" })
      yield* same({ ...get(""), path: "/chat/conversations/not%20a%20uuid/messages" })
      yield* same({ ...get(""), path: `/chat/conversations/${conversationId}/messages/` })

      expect(statuses).toEqual([
        200, 200, 200, 200, 200, 200, 200, 200,
        400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 400,
        200, 200,
        200, 200, 404, 401, 401, 404, 200, 400, 400, 200
      ])
    }))

  it.effect("a repeated header takes the generic path, which joins the values", () =>
    Effect.gen(function*() {
      const { server } = yield* makeSides(mainConfig)
      const { conversationId, user } = yield* pair
      const port = Number(new URL(server.url).port)
      const body = JSON.stringify({ conversationId, content: "twice" })
      const request = (path: string, headers: ReadonlyArray<string>) =>
        rawExchange(port, [
          `POST ${path} HTTP/1.1`,
          "host: localhost",
          "content-type: application/json",
          `content-length: ${Buffer.byteLength(body)}`,
          ...headers,
          "",
          body
        ].join("\r\n"))
      for (
        const headers of [
          [`authorization: Bearer ${user.token}`, `authorization: Bearer ${user.token}`],
          [`authorization: Bearer ${user.token}`, "origin: https://app.example", "origin: https://admin.example"]
        ]
      ) {
        const fromFast = yield* request("/chat/messages", headers)
        const fromWire = yield* request("/chat/%6Dessages", headers)
        expect(fromFast.status).toBe(fromWire.status)
        expect(fromFast.headers).toEqual(fromWire.headers)
        expect(fromFast.status === 201 ? Object.keys(JSON.parse(fromFast.body)) : fromFast.body)
          .toEqual(fromWire.status === 201 ? Object.keys(JSON.parse(fromWire.body)) : fromWire.body)
      }
    }))

  it.effect("each request is logged as the HttpApp's requestLog logs it", () =>
    Effect.gen(function*() {
      const { fast, wire } = yield* makeSides(mainConfig)
      const { conversationId, user } = yield* pair
      const call: Call = {
        method: "POST",
        path: "/chat/messages",
        token: user.token,
        body: JSON.stringify({ conversationId, content: "logged", clientMessageId: "log-1" })
      }
      const history: Call = { method: "GET", path: `/chat/conversations/${conversationId}/messages?limit=1`, token: user.token }
      logs.length = 0
      yield* fast(call)
      yield* wire(call)
      yield* fast(history)
      yield* wire(history)
      yield* fast({ ...call, token: "nope" })
      const lines = logs.filter((line) => line.includes("/chat/")).map((line) =>
        line.replace(/timestamp=\S+ /, "").replace(/fiber=\S+ /, "").replace(/ms=\d+/, "ms=N")
      )
      expect(lines).toEqual([
        "level=INFO message=\"POST /chat/messages 201\" ms=N",
        "level=INFO message=\"POST /chat/%6Dessages 200\" ms=N",
        `level=INFO message="GET /chat/conversations/${conversationId}/messages 200" ms=N`,
        `level=INFO message="GET /chat/conversations/${conversationId}/%6Dessages 200" ms=N`,
        "level=INFO message=\"POST /chat/messages 401\" ms=N"
      ])
    }))

  it.scoped("a defect is the problems middleware's 500, logged once, then the request line, as in the HttpApp", () =>
    Effect.gen(function*() {
      const { conversationId, user } = yield* pair
      const messages = yield* Messages
      const broken = new Messages({ ...messages, send: () => Effect.die(new Error("the database is on fire")) })
      const fastLines: Array<string> = []
      const genericLines: Array<string> = []
      const url = yield* fastOnly.pipe(Effect.provideService(Messages, broken), Effect.provide(capture(fastLines)))
      const httpApp = yield* makeHttpApp.pipe(
        Effect.provideService(Messages, broken),
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(mainConfig))))
      )
      const runtime = yield* Effect.runtime<Layer.Layer.Success<typeof NodeHttpServer.layerContext>>().pipe(
        Effect.provide(NodeHttpServer.layerContext),
        Effect.provide(capture(genericLines))
      )
      const handler = HttpApp.toWebHandlerRuntime(runtime)(httpApp)
      const call: Call = {
        method: "POST",
        path: "/chat/messages",
        token: user.token,
        headers: { origin: "https://admin.example" },
        body: JSON.stringify({ conversationId, content: "boom" })
      }
      const fromFast = yield* Effect.flatMap(
        Effect.promise(() => fetch(url + call.path, requestInit(call))),
        (response) => seenOf(response, compared)
      )
      const fromWeb = yield* Effect.flatMap(
        Effect.promise(() => handler(new Request(`http://localhost${call.path}`, requestInit(call)))),
        (response) => seenOf(response, compared)
      )
      expect(fromFast).toEqual(fromWeb)
      expect(fromFast.status).toBe(500)
      expect(JSON.parse(fromFast.body)).toEqual({ _tag: "InternalServerError", message: "Something went wrong on our side" })
      const summary = (lines: ReadonlyArray<string>) =>
        lines.map((line) => line.replace(/ cause=[\s\S]*$/, " cause=…")).filter((line) => !line.includes("Listening"))
      expect(summary(fastLines)).toEqual([
        "level=ERROR message=\"Unhandled error\" cause=…",
        "level=INFO message=\"POST /chat/messages 500\" ms=N"
      ])
      expect(summary(fastLines)).toEqual(summary(genericLines))
      expect(fastLines[0]).toContain("the database is on fire")
    }))

  it.scoped("the fast routes answer what they can themselves and leave the rest to the route after them", () =>
    Effect.gen(function*() {
      const { conversationId, user } = yield* pair
      const url = yield* fastOnly
      const status = (call: Call) =>
        Effect.promise(() => fetch(url + call.path, requestInit(call)).then(async (response) => {
          await response.arrayBuffer()
          return response.status
        }))
      const send: Call = {
        method: "POST",
        path: "/chat/messages",
        token: user.token,
        body: JSON.stringify({ conversationId, content: "direct" })
      }
      const history: Call = { method: "GET", path: `/chat/conversations/${conversationId}/messages`, token: user.token }
      expect(yield* status(send)).toBe(201)
      expect(yield* status({ ...send, token: "bad" })).toBe(401)
      expect(yield* status({ ...send, body: "{" })).toBe(400)
      expect(yield* status(history)).toBe(200)
      expect(yield* status({ ...history, path: `${history.path}?limit=0&beforeSeq=1` })).toBe(400)
      expect(yield* status({ ...history, path: "/chat/conversations/nope/messages" })).toBe(400)
      // Left to the generic route: another content type, an encoded path or query, a trailing slash.
      expect(yield* status({ ...send, headers: { "content-type": "text/plain" } })).toBe(299)
      expect(yield* status({ ...history, path: `${history.path}?limit=%31` })).toBe(299)
      expect(yield* status({ ...history, path: `${history.path}?limit=1+` })).toBe(299)
      expect(yield* status({ ...history, path: "/chat/conversations/a%20b/messages" })).toBe(299)
      expect(yield* status({ ...send, path: "/chat/messages/" })).toBe(299)
    }))
})

const limitedConfig = { SEND_RATE_LIMIT: "2", SEND_RATE_WINDOW: "1 minute" }

layer(TestApp.layer(limitedConfig), { excludeTestServices: true })("fast routes, rate limited", (it) => {
  it.effect("past the send limit: 429 with Retry-After, as the generic path answers (CORS for any origin)", () =>
    Effect.gen(function*() {
      const { fast, web, wire } = yield* makeSides(limitedConfig)
      const { conversationId, user } = yield* pair
      const call = (content: string): Call => ({
        method: "POST",
        path: "/chat/messages",
        token: user.token,
        headers: { origin: "https://anywhere.example" },
        body: JSON.stringify({ conversationId, content })
      })
      expect((yield* fast(call("1"))).status).toBe(201)
      expect((yield* fast(call("2"))).status).toBe(201)
      const answers = [yield* fast(call("3")), yield* wire(call("4")), yield* web(call("5"))]
      const seconds = answers.map((answer) => Number(answer.headers["retry-after"]))
      for (const [i, answer] of answers.entries()) {
        expect(answer.status).toBe(429)
        expect(JSON.parse(answer.body)).toEqual({
          message: "Too many attempts, retry later",
          retryAfterSeconds: seconds[i],
          _tag: "RateLimited"
        })
        expect(seconds[i]).toBeGreaterThan(55)
        expect(pick(answer.headers, compared)).toEqual({
          "access-control-allow-origin": "*",
          // A page on another origin may read how long to wait.
          "access-control-expose-headers": "retry-after,content-disposition,content-range",
          "content-type": "application/json",
          "retry-after": String(seconds[i]),
          vary: "Origin"
        })
      }
      // The same window: a second may tick between two answers, no more.
      expect(Math.max(...seconds) - Math.min(...seconds)).toBeLessThanOrEqual(1)
      const [fromFast, fromWire] = answers
      expect({ ...fromFast, body: "", headers: { ...fromFast!.headers, "retry-after": "" } })
        .toEqual({ ...fromWire, body: "", headers: { ...fromWire!.headers, "retry-after": "" } })
    }))
})

layer(TestApp.layer({ HTTP_MAX_IN_FLIGHT: "0" }), { excludeTestServices: true })("fast routes, no capacity", (it) => {
  it.effect("with no request slot free, the fast routes shed as the HttpServer does: 503 Overloaded", () =>
    Effect.gen(function*() {
      const { fast, wire } = yield* makeSides({})
      for (
        const call of [
          { method: "POST", path: "/chat/messages", token: "t", body: "{}" },
          { method: "GET", path: `/chat/conversations/${crypto.randomUUID()}/messages` }
        ] satisfies ReadonlyArray<Call>
      ) {
        const fromFast = yield* fast(call)
        expect(fromFast.status).toBe(503)
        expect(JSON.parse(fromFast.body)).toEqual({ _tag: "Overloaded", message: "The server is busy: retry in a moment" })
        // The wait is jittered: whole seconds, at least one.
        expect(Number(fromFast.headers["retry-after"])).toBeGreaterThanOrEqual(1)
        const fromWire = yield* wire(call)
        expect(Number(fromWire.headers["retry-after"])).toBeGreaterThanOrEqual(1)
        const { "retry-after": _fast, ...fastHeaders } = fromFast.headers
        const { "retry-after": _wire, ...wireHeaders } = fromWire.headers
        expect({ ...fromFast, headers: fastHeaders }).toEqual({ ...fromWire, headers: wireHeaders })
      }
    }))
})

/** A uWS app with only the fast routes, and after them a route that answers 299 to whatever they pass on. */
const fastOnly = Effect.gen(function*() {
  const uws = yield* Uws.load
  const app = uws.App()
  const fibers = yield* FiberSet.make<unknown, unknown>()
  yield* serveFastRoutes(app, { fibers, inFlight: new InFlight(8), maxBodyBytes: 8192, frontendUrl: origins })
  app.any("/*", (res) => void res.writeStatus("299 Passed On").end("passed on"))
  const listening = yield* Effect.acquireRelease(
    Effect.async<Uws.us_listen_socket>((resume) => {
      app.listen("127.0.0.1", 0, (socket) => resume(Effect.succeed(socket)))
    }),
    (socket) => Effect.sync(() => uws.us_listen_socket_close(socket))
  )
  return `http://127.0.0.1:${uws.us_socket_local_port(listening)}`
})

/** Log lines as logfmt text, without what changes from line to line. */
const capture = (lines: Array<string>) =>
  Logger.replace(
    Logger.defaultLogger,
    Logger.map(Logger.logfmtLogger, (line) =>
      void lines.push(line.replace(/timestamp=\S+ /, "").replace(/fiber=\S+ /, "").replace(/ms=\d+/, "ms=N")))
  )

/** One request written as is on a fresh connection (repeated headers, which fetch would join), its answer parsed. */
const rawExchange = (port: number, request: string) =>
  Effect.async<{ readonly status: number; readonly headers: Record<string, string>; readonly body: string }>((resume) => {
    const socket = Net.connect(port, "127.0.0.1", () => socket.write(request))
    let received = Buffer.alloc(0)
    socket.on("data", (data) => {
      received = Buffer.concat([received, data])
      const text = received.toString("utf8")
      const end = text.indexOf("\r\n\r\n")
      if (end === -1) return
      const [statusLine = "", ...lines] = text.slice(0, end).split("\r\n")
      const headers: Record<string, string> = {}
      for (const line of lines) {
        const colon = line.indexOf(":")
        const name = line.slice(0, colon).toLowerCase()
        if (name !== "date") headers[name] = line.slice(colon + 1).trim()
      }
      const body = received.subarray(Buffer.byteLength(text.slice(0, end + 4)))
      if (body.length < Number(headers["content-length"] ?? 0)) return
      socket.destroy()
      resume(Effect.succeed({ status: Number(statusLine.split(" ")[1]), headers, body: body.toString("utf8") }))
    })
    socket.on("error", (error) => resume(Effect.die(error)))
  })
