import { describe, expect, layer } from "@effect/vitest"
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import * as TestApp from "../support/TestApp.js"
import { TestServer } from "../support/TestApp.js"
import { createUser } from "../support/Users.js"
import { connectIo, isEvent, refusedIo } from "../support/SocketIo.js"
import { connect, refusedUpgrade } from "../support/Ws.js"
import { SignJWT } from "jose"
import WebSocket from "ws"
import { audience, issuer } from "../../src/infra/crypto/JoseTokens.js"

const request = (method: string, path: string, options: TestApp.RequestOptions = {}) =>
  Effect.flatMap(TestServer, (server) => server.request(method, path, options))

const login = (email: string, password: string, deviceName?: string) =>
  Effect.gen(function*() {
    const reply = yield* request("POST", "/auth/login", {
      body: { email, password, ...(deviceName === undefined ? {} : { deviceName }) }
    })
    expect(reply.status, JSON.stringify(reply.body)).toBe(200)
    return reply.body as {
      readonly accessToken: string
      readonly refreshToken: string
      readonly refreshExpiresIn: number
      readonly expiresIn: number
      readonly sessionId: string
    }
  })

const refresh = (refreshToken: string) => request("POST", "/auth/refresh", { body: { refreshToken } })
const me = (token: string) => Effect.map(request("GET", "/auth/sessions", { token }), (r) => r.status)

describe("device sessions", () => {
  layer(TestApp.layer({ REFRESH_GRACE: "1 second" }), { excludeTestServices: true, timeout: 60_000 })("sessions", (it) => {
    it.effect("a sign-in is a session: short access token, opaque refresh token, both in the answer", () =>
      Effect.gen(function*() {
        const user = yield* createUser("user")
        const session = yield* login(user.email, user.password, "Pixel 8")
        expect(session.expiresIn).toBe(15 * 60)
        expect(session.refreshExpiresIn).toBeGreaterThan(59 * 86_400)
        expect(session.refreshToken).toMatch(/^[A-Za-z0-9_-]{43}$/)
        const [, payload] = session.accessToken.split(".")
        expect(JSON.parse(Buffer.from(payload!, "base64url").toString())).toMatchObject({ sid: session.sessionId })
        // Only a hash is stored.
        const sql = yield* SqlClient.SqlClient
        const rows = yield* sql<{ refreshHash: string }>`SELECT refresh_hash FROM sessions WHERE id = ${session.sessionId}`
        expect(rows[0]!.refreshHash).not.toContain(session.refreshToken)
        const listed = yield* request("GET", "/auth/sessions", { token: session.accessToken })
        // The sign-in of createUser, and this one.
        expect(listed.body).toHaveLength(2)
        expect(listed.body.filter((s: any) => s.current)).toEqual([
          expect.objectContaining({ id: session.sessionId, deviceName: "Pixel 8" })
        ])
      }))

    it.effect("refresh rotates: the new pair works, the old refresh token answers the same pair only within the grace", () =>
      Effect.gen(function*() {
        const user = yield* createUser("user")
        const first = yield* login(user.email, user.password)
        const renewed = yield* refresh(first.refreshToken)
        expect(renewed.status).toBe(200)
        expect(renewed.body.sessionId).toBe(first.sessionId)
        expect(renewed.body.refreshToken).not.toBe(first.refreshToken)
        expect(yield* me(renewed.body.accessToken)).toBe(200)
        // The answer was lost: the app retries with the same token and gets the same successor.
        const retried = yield* refresh(first.refreshToken)
        expect(retried.status).toBe(200)
        expect(retried.body.refreshToken).toBe(renewed.body.refreshToken)
        // The successor rotates on as usual.
        const next = yield* refresh(renewed.body.refreshToken)
        expect(next.status).toBe(200)
        expect(yield* me(next.body.accessToken)).toBe(200)
      }))

    it.effect("a refresh token used after its rotation (stolen) ends that session, and only it", () =>
      Effect.gen(function*() {
        const user = yield* createUser("user")
        const phone = yield* login(user.email, user.password, "phone")
        const laptop = yield* login(user.email, user.password, "laptop")
        const renewed = yield* refresh(phone.refreshToken)
        expect(renewed.status).toBe(200)
        yield* Effect.sleep("1200 millis")
        const replayed = yield* refresh(phone.refreshToken)
        expect(replayed.status).toBe(401)
        expect(replayed.body.message).toMatch(/already used/)
        // The legitimate holder is signed out too: the session is gone.
        expect((yield* refresh(renewed.body.refreshToken)).status).toBe(401)
        expect(yield* me(renewed.body.accessToken)).toBe(401)
        // The laptop's session is untouched.
        expect(yield* me(laptop.accessToken)).toBe(200)
        expect((yield* refresh(laptop.refreshToken)).status).toBe(200)
      }))

    it.effect("logout ends this session at once (REST 401, its socket closed with 4005); other devices stay", () =>
      Effect.gen(function*() {
        const user = yield* createUser("user")
        const phone = yield* login(user.email, user.password)
        const laptop = yield* login(user.email, user.password)
        const phoneSocket = yield* connect(phone.accessToken)
        const phoneIo = yield* connectIo(phone.accessToken)
        const laptopSocket = yield* connect(laptop.accessToken)
        expect((yield* request("POST", "/auth/logout", { token: phone.accessToken })).status).toBe(204)
        expect((yield* phoneSocket.closed).code).toBe(4005)
        // Socket.IO: told why, then disconnected by the server (it does not reconnect by itself).
        expect((yield* phoneIo.next(isEvent("error"))).data).toMatchObject({ code: "SocketClosed", closeCode: 4005 })
        expect(yield* phoneIo.disconnected).toBe("io server disconnect")
        expect(yield* me(phone.accessToken)).toBe(401)
        expect((yield* refresh(phone.refreshToken)).status).toBe(401)
        expect(yield* me(laptop.accessToken)).toBe(200)
        expect(laptopSocket.socket.readyState).toBe(laptopSocket.socket.OPEN)
      }).pipe(Effect.scoped))

    it.effect("a session ended from another device; logout-all ends every one", () =>
      Effect.gen(function*() {
        const user = yield* createUser("user")
        const other = yield* createUser("user")
        const phone = yield* login(user.email, user.password, "phone")
        const laptop = yield* login(user.email, user.password, "laptop")
        const tablet = yield* login(user.email, user.password, "tablet")
        const stranger = yield* login(other.email, other.password)
        // Not the stranger's to end, nor anything unknown.
        expect((yield* request("DELETE", `/auth/sessions/${phone.sessionId}`, { token: stranger.accessToken })).status)
          .toBe(404)
        expect((yield* request("DELETE", "/auth/sessions/not-a-uuid", { token: laptop.accessToken })).status).toBe(400)
        expect((yield* request("DELETE", `/auth/sessions/${phone.sessionId}`, { token: laptop.accessToken })).status)
          .toBe(204)
        expect(yield* me(phone.accessToken)).toBe(401)
        expect((yield* request("GET", "/auth/sessions", { token: laptop.accessToken })).body.map((s: any) => s.deviceName))
          .toEqual(expect.arrayContaining(["laptop", "tablet"]))
        expect((yield* request("POST", "/auth/logout-all", { token: laptop.accessToken })).status).toBe(204)
        for (const s of [laptop, tablet]) {
          expect(yield* me(s.accessToken)).toBe(401)
          expect((yield* refresh(s.refreshToken)).status).toBe(401)
        }
        expect(yield* me(stranger.accessToken)).toBe(200)
      }))

    it.effect("expired, unknown and malformed refresh tokens are 401 or 400; a password change ends every session", () =>
      Effect.gen(function*() {
        const user = yield* createUser("user")
        const old = yield* login(user.email, user.password)
        const sql = yield* SqlClient.SqlClient
        yield* sql`UPDATE sessions SET expires_at = now() - interval '1 second' WHERE id = ${old.sessionId}`
        expect((yield* refresh(old.refreshToken)).status).toBe(401)
        expect((yield* refresh("x".repeat(43))).status).toBe(401)
        expect((yield* request("POST", "/auth/refresh", { body: {} })).status).toBe(400)
        expect((yield* request("POST", "/auth/refresh", { body: { refreshToken: "x", extra: 1 } })).status).toBe(400)
        const current = yield* login(user.email, user.password)
        const changed = yield* request("PATCH", `/users/${user.id}`, {
          token: current.accessToken,
          body: { password: "new-password-456", currentPassword: user.password }
        })
        expect(changed.status).toBe(200)
        expect((yield* refresh(current.refreshToken)).status).toBe(401)
      }))

    it.effect("a WebSocket ticket opens one socket, once, within 30 s; the socket lives as its token", () =>
      Effect.gen(function*() {
        const server = yield* TestServer
        const user = yield* createUser("user")
        const session = yield* login(user.email, user.password)
        const ticketOf = Effect.map(request("POST", "/auth/ws-ticket", { token: session.accessToken }), (r) => {
          expect(r.status).toBe(200)
          expect(r.body.expiresIn).toBe(30)
          return r.body.ticket as string
        })
        expect((yield* request("POST", "/auth/ws-ticket", {})).status).toBe(401)
        // `?ticket=` on the native door.
        const ticket = yield* ticketOf
        const url = `${server.url.replace(/^http/, "ws")}/ws?ticket=${encodeURIComponent(ticket)}`
        const opened = yield* Effect.async<number>((resume) => {
          const ws = new WebSocket(url)
          ws.once("open", () => {
            ws.close()
            resume(Effect.succeed(101))
          })
          ws.once("unexpected-response", (_, response) => resume(Effect.succeed(response.statusCode ?? 0)))
        })
        expect(opened).toBe(101)
        // Used: refused, whichever way it comes.
        expect((yield* refusedUpgrade(ticket, { via: "query" })).message).toContain("401")
        // On the Socket.IO door too.
        const forIo = yield* ticketOf
        yield* Effect.scoped(connectIo(forIo))
        expect((yield* refusedIo(forIo)).data).toMatchObject({ code: "Forbidden" })
        // Expired.
        const late = yield* ticketOf
        const sql = yield* SqlClient.SqlClient
        yield* sql`UPDATE ws_tickets SET expires_at = now() - interval '1 second'`
        expect((yield* refusedUpgrade(late, { via: "query" })).message).toContain("401")
        // A ticket of an ended session opens nothing.
        const orphan = yield* ticketOf
        expect((yield* request("POST", "/auth/logout", { token: session.accessToken })).status).toBe(204)
        expect((yield* refusedUpgrade(orphan, { via: "query" })).message).toContain("401")
      }))

    it.effect("a token from before sessions (no sid) keeps working until it expires", () =>
      Effect.gen(function*() {
        const user = yield* createUser("user")
        const legacy = yield* Effect.promise(() =>
          new SignJWT({ role: "user" })
            .setProtectedHeader({ alg: "HS256", typ: "JWT" })
            .setSubject(user.id)
            .setIssuer(issuer)
            .setAudience(audience)
            .setIssuedAt()
            .setExpirationTime("1 day")
            .sign(new TextEncoder().encode(TestApp.jwtSecret)))
        expect((yield* request("GET", "/users/me", { token: legacy })).status).toBe(200)
        // Logging out with it ends nothing and refuses nothing.
        expect((yield* request("POST", "/auth/logout", { token: legacy })).status).toBe(204)
        expect((yield* request("GET", "/users/me", { token: legacy })).status).toBe(200)
        const socket = yield* connect(legacy)
        expect(socket.socket.readyState).toBe(socket.socket.OPEN)
      }).pipe(Effect.scoped))

    it.effect("a tampered access token is 401", () =>
      Effect.gen(function*() {
        const user = yield* createUser("user")
        const session = yield* login(user.email, user.password)
        const [header, payload, signature] = session.accessToken.split(".")
        const claims = JSON.parse(Buffer.from(payload!, "base64url").toString())
        const forged = Buffer.from(JSON.stringify({ ...claims, role: "admin" })).toString("base64url")
        expect(yield* me(`${header}.${forged}.${signature}`)).toBe(401)
        expect(yield* me(`${header}.${payload}.${signature!.slice(0, -2)}AA`)).toBe(401)
      }))
  })
})
