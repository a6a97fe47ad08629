import { expect, layer } from "@effect/vitest"
import { Effect, Schedule } from "effect"
import * as TestApp from "../support/TestApp.js"
import { TestServer } from "../support/TestApp.js"
import { history, pair, send } from "../support/Chat.js"
import { uniqueEmail } from "../support/Users.js"
import { connect } from "../support/Ws.js"

const login = (email: string, ip?: string) =>
  Effect.flatMap(TestServer, (server) =>
    server.request("POST", "/auth/login", {
      body: { email, password: "whatever-password" },
      ...(ip === undefined ? {} : { headers: { "x-forwarded-for": `${ip}, 10.0.0.1` } })
    }))

layer(
  TestApp.layer({
    AUTH_RATE_LIMIT_PER_EMAIL: "3",
    AUTH_RATE_LIMIT_PER_IP: "5",
    AUTH_RATE_LIMIT_WINDOW: "10 minutes",
    TRUST_PROXY: "true"
  }),
  { excludeTestServices: true }
)("auth rate limits", (it) => {
  it.effect("the attempt past the per-address-and-email limit gets 429 with Retry-After", () =>
    Effect.gen(function*() {
      const email = uniqueEmail("limited")
      for (let i = 0; i < 3; i++) expect((yield* login(email, "198.51.100.1")).status).toBe(401)
      // The same email from elsewhere is not locked out (see loginLockout.test.ts).
      expect((yield* login(email, "198.51.100.2")).status).toBe(401)
      const limited = yield* login(email, "198.51.100.1")
      expect(limited.status).toBe(429)
      expect(limited.body._tag).toBe("RateLimited")
      const retryAfter = Number(limited.headers.get("retry-after"))
      expect(retryAfter).toBeGreaterThan(500)
      expect(retryAfter).toBeLessThanOrEqual(600)
      expect(limited.body.retryAfterSeconds).toBe(retryAfter)
      // Other emails are not affected.
      expect((yield* login(uniqueEmail("other"), "198.51.100.3")).status).toBe(401)
    }))

  it.effect("the attempt past the per-IP limit gets 429, whatever the email", () =>
    Effect.gen(function*() {
      for (let i = 0; i < 5; i++) expect((yield* login(uniqueEmail("ip"), "203.0.113.9")).status).toBe(401)
      const limited = yield* login(uniqueEmail("ip"), "203.0.113.9")
      expect(limited.status).toBe(429)
      expect(limited.headers.get("retry-after")).toMatch(/^\d+$/)
      expect((yield* login(uniqueEmail("ip"), "203.0.113.10")).status).toBe(401)
    }))

  it.effect("register has its own budget and limit", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const statuses: Array<number> = []
      for (let i = 0; i < 6; i++) {
        const reply = yield* server.request("POST", "/auth/register", {
          body: { email: uniqueEmail("reg"), password: "password-123", firstName: "R", lastName: "L" },
          headers: { "x-forwarded-for": "192.0.2.77" }
        })
        statuses.push(reply.status)
      }
      expect(statuses).toEqual([201, 201, 201, 201, 201, 429])
    }))
})

layer(TestApp.layer({ SEND_RATE_LIMIT: "4", SEND_RATE_WINDOW: "1 minute" }), { excludeTestServices: true })(
  "send rate limits",
  (it) => {
    it.scoped("one user's sends are limited over REST and WebSocket together: 429 with Retry-After, RateLimited with retryAfterMs", () =>
      Effect.gen(function*() {
        const { conversationId, trainer, user } = yield* pair
        for (const i of [1, 2]) expect((yield* send(user.token, conversationId, `rest ${i}`)).status).toBe(201)
        const socket = yield* connect(user.token)
        for (const i of [3, 4]) {
          expect((yield* socket.request("sendMessage", { conversationId, content: `ws ${i}`, clientMessageId: `w${i}` })).event).toBe("ack")
        }
        const overWs = yield* socket.request("sendMessage", { conversationId, content: "too many", clientMessageId: "w5" })
        expect(overWs.data).toMatchObject({ code: "RateLimited" })
        expect(overWs.data.retryAfterMs).toBeGreaterThan(0)
        const overRest = yield* send(user.token, conversationId, "too many")
        expect(overRest.status).toBe(429)
        expect(Number(overRest.headers.get("retry-after"))).toBeGreaterThan(0)
        // Another user's budget is their own; nothing refused was stored.
        expect((yield* send(trainer.token, conversationId, "mine")).status).toBe(201)
        expect((yield* history(user.token, conversationId)).body.messages).toHaveLength(5)
      }))
  }
)

layer(TestApp.layer({ HTTP_MAX_IN_FLIGHT: "3", WS_MAX_IN_FLIGHT: "3" }), { excludeTestServices: true })("overload", (it) => {
  it.scoped("in-flight limits shed what is beyond them (503 Overloaded / an Overloaded frame) and free their slots", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const { conversationId, user } = yield* pair
      // A burst: on a real database some are refused (the embedded one may answer each before the next).
      const burst = yield* Effect.all(
        Array.from({ length: 60 }, () => history(user.token, conversationId)),
        { concurrency: "unbounded" }
      )
      for (const refused of burst.filter((r) => r.status !== 200)) {
        expect(refused.status).toBe(503)
        expect(refused.body).toMatchObject({ _tag: "Overloaded" })
        expect(Number(refused.headers.get("retry-after"))).toBeGreaterThanOrEqual(1)
      }
      // Every slot came back: one at a time, everything passes.
      for (let i = 0; i < 20; i++) expect((yield* history(user.token, conversationId)).status).toBe(200)

      const socket = yield* connect(user.token)
      for (let i = 0; i < 40; i++) yield* socket.send("joinConversation", { conversationId }, `j${i}`)
      const repliesTo = () => socket.frames.filter((f) => f.id !== undefined && /^j\d+$/.test(f.id))
      yield* Effect.suspend(() => repliesTo().length >= 40 ? Effect.void : Effect.fail("waiting")).pipe(
        Effect.retry(Schedule.spaced("20 millis")),
        Effect.timeout("10 seconds")
      )
      const replies = repliesTo()
      expect(new Set(replies.map((r) => r.id)).size).toBe(40)
      for (const reply of replies.filter((r) => r.event === "error")) {
        expect(reply.data).toMatchObject({ code: "Overloaded" })
        expect(reply.data.retryAfterMs).toBeGreaterThan(0)
      }
      for (let i = 0; i < 10; i++) expect((yield* socket.request("joinConversation", { conversationId })).event).toBe("ack")
      expect((yield* server.request("GET", "/health")).status).toBe(200)
    }))
})

layer(TestApp.layer({ HTTP_MAX_IN_FLIGHT: "0", WS_MAX_IN_FLIGHT: "0" }), { excludeTestServices: true })("no capacity", (it) => {
  it.scoped("with no capacity at all, every request is 503 Overloaded and every frame an Overloaded error", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const reply = yield* server.request("GET", "/health")
      expect(reply.status).toBe(503)
      expect(reply.body).toEqual({ _tag: "Overloaded", message: "The server is busy: retry in a moment" })
      // Jittered, in whole seconds (see the hardening tests for how it grows).
      const wait = Number(reply.headers.get("retry-after"))
      expect(Number.isInteger(wait) && wait >= 1).toBe(true)
    }))
})
