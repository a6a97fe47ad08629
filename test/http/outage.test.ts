import * as Reactivity from "@effect/experimental/Reactivity"
import { PgClient } from "@effect/sql-pg"
import { expect, it } from "@effect/vitest"
import { Effect, Fiber, Redacted } from "effect"
import { pair } from "../support/Chat.js"
import { startInstance } from "../support/Instances.js"
import { ownPostgres } from "../support/Services.js"
import { TestServer } from "../support/TestApp.js"

const expectUnavailable = (reply: { readonly status: number; readonly headers: Headers; readonly body: any }, what: string) => {
  expect(reply.status, what).toBe(503)
  expect(reply.body, what).toEqual({ _tag: "Unavailable", message: expect.any(String) })
  const wait = Number(reply.headers.get("retry-after"))
  expect(Number.isInteger(wait) && wait >= 1, `${what}: Retry-After ${wait}`).toBe(true)
}

it.scopedLive(
  "Postgres away: a valid token gets 503 Unavailable with Retry-After (generic and fast routes), never 401/500; back: the same token works at once",
  () =>
    Effect.gen(function*() {
      const pg = yield* ownPostgres
      const instance = yield* startInstance({ DATABASE_URL: pg.url, AUTH_USER_CACHE_TTL: "5 seconds" })
      const server = instance.server
      const { conversationId, user } = yield* Effect.provideService(pair, TestServer, server)
      expect((yield* server.request("GET", "/users/me", { token: user.token })).status).toBe(200)

      yield* pg.stop
      // The user remembered before the outage is forgotten by now: every request asks the database.
      yield* Effect.sleep("5500 millis")
      const waits = new Set<string | null>()
      for (let i = 0; i < 3; i++) {
        const me = yield* server.request("GET", "/users/me", { token: user.token })
        expectUnavailable(me, "GET /users/me")
        waits.add(me.headers.get("retry-after"))
        for (const path of ["/chat/messages", "/chat/%6Dessages"]) {
          expectUnavailable(
            yield* server.request("POST", path, { token: user.token, body: { conversationId, content: `during ${i}` } }),
            `POST ${path}`
          )
        }
        expectUnavailable(
          yield* server.request("GET", `/chat/conversations/${conversationId}/messages`, { token: user.token }),
          "GET history"
        )
      }
      expect((yield* server.request("GET", "/ready")).status).toBe(503)

      // A lookup fails right before Postgres is back: it must not be remembered.
      expectUnavailable(yield* server.request("GET", "/users/me", { token: user.token }), "GET /users/me")
      yield* pg.start
      const back = Date.now()
      const me = yield* server.request("GET", "/users/me", { token: user.token })
      expect(me.status).toBe(200)
      const sent = yield* server.request("POST", "/chat/messages", { token: user.token, body: { conversationId, content: "after" } })
      expect(sent.status).toBe(201)
      expect(Date.now() - back).toBeLessThan(1000)
      expect((yield* server.request("GET", "/ready")).status).toBe(200)
    }),
  120_000
)

it.scopedLive(
  "/ready answers 200 while every pooled connection waits on a slow query, and 503 once Postgres is down",
  () =>
    Effect.gen(function*() {
      const pg = yield* ownPostgres
      const instance = yield* startInstance({ DATABASE_URL: pg.url, DB_POOL_MAX: "2" })
      const server = instance.server
      const sql = yield* PgClient.make({ url: Redacted.make(pg.url), maxConnections: 1 }).pipe(Effect.provide(Reactivity.layer))
      // A transaction of the test's holds the users table; logins queue behind it and take the whole pool.
      const locked = yield* Effect.makeLatch()
      const holder = yield* sql.withTransaction(
        sql`LOCK TABLE users IN ACCESS EXCLUSIVE MODE`.pipe(
          Effect.zipRight(locked.open),
          Effect.zipRight(Effect.sleep("6 seconds"))
        )
      ).pipe(Effect.fork)
      yield* locked.await
      const logins = yield* Effect.all(
        Array.from({ length: 6 }, (_, i) =>
          server.request("POST", "/auth/login", { body: { email: `nobody-${i}@test.local`, password: "whatever-1" } })),
        { concurrency: "unbounded" }
      ).pipe(Effect.fork)
      yield* Effect.sleep("1200 millis")
      const started = Date.now()
      const ready = yield* server.request("GET", "/ready")
      expect(ready.status).toBe(200)
      expect(Date.now() - started).toBeLessThan(1500)
      yield* Fiber.join(holder)
      // The queued logins went through once the lock was gone.
      expect((yield* Fiber.join(logins)).map((reply) => reply.status)).toEqual([401, 401, 401, 401, 401, 401])

      yield* pg.stop
      yield* Effect.sleep("1100 millis")
      expect((yield* server.request("GET", "/ready")).status).toBe(503)
    }),
  120_000
)
