import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import * as TestApp from "../support/TestApp.js"
import { TestServer } from "../support/TestApp.js"
import { uniqueEmail } from "../support/Users.js"

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
  it.effect("the attempt past the per-email limit gets 429 with Retry-After", () =>
    Effect.gen(function*() {
      const email = uniqueEmail("limited")
      for (let i = 0; i < 3; i++) expect((yield* login(email, "198.51.100.1")).status).toBe(401)
      const limited = yield* login(email, "198.51.100.2")
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
