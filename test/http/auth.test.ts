import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import * as TestApp from "../support/TestApp.js"
import { TestServer } from "../support/TestApp.js"
import { register, signIn, uniqueEmail } from "../support/Users.js"

layer(TestApp.layer(), { excludeTestServices: true })("auth", (it) => {
  it.effect("register answers 201 with a session, login 200, and the token opens /users/me", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const email = uniqueEmail("ada")
      const registered = yield* server.request("POST", "/auth/register", {
        body: { email: `  ${email.toUpperCase()} `, password: "correct horse", firstName: " Ada ", lastName: "Lovelace" }
      })
      expect(registered.status).toBe(201)
      expect(registered.body.tokenType).toBe("Bearer")
      expect(registered.body.expiresIn).toBeGreaterThan(0)
      expect(registered.body.user).toMatchObject({ email, firstName: "Ada", lastName: "Lovelace", role: "user", isActive: true, avatar: null, assignedTrainerId: null })
      expect(Object.keys(registered.body.user).sort()).toEqual(
        ["assignedTrainerId", "avatar", "createdAt", "email", "firstName", "id", "isActive", "lastName", "role", "updatedAt"]
      )

      const login = yield* server.request("POST", "/auth/login", { body: { email, password: "correct horse" } })
      expect(login.status).toBe(200)
      expect(login.body.user.id).toBe(registered.body.user.id)

      const me = yield* server.request("GET", "/users/me", { token: login.body.accessToken })
      expect(me.status).toBe(200)
      expect(me.body.id).toBe(registered.body.user.id)
      expect(JSON.stringify(me.body)).not.toContain("password")
    }))

  it.effect("the typed client derived from the contract works end to end", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const user = yield* register("typed")
      const client = yield* server.client(user.token)
      const me = yield* client.users.me()
      expect(me.email).toBe(user.email)
    }))

  it.effect("a taken email is 409, whatever its case", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const user = yield* register("dup")
      const again = yield* server.request("POST", "/auth/register", {
        body: { email: user.email.toUpperCase(), password: "another-password", firstName: "A", lastName: "B" }
      })
      expect(again.status).toBe(409)
      expect(again.body._tag).toBe("EmailTaken")
    }))

  it.effect("unknown email and wrong password get the same 401", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const user = yield* register("wrong")
      const wrong = yield* server.request("POST", "/auth/login", { body: { email: user.email, password: "not-the-password" } })
      const unknown = yield* server.request("POST", "/auth/login", { body: { email: uniqueEmail("nobody"), password: "not-the-password" } })
      expect(wrong.status).toBe(401)
      expect(unknown.status).toBe(401)
      expect(wrong.body).toEqual(unknown.body)
    }))

  it.effect("bad bodies get 400 naming each field, and nothing is created", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const cases: ReadonlyArray<readonly [unknown, ReadonlyArray<string>]> = [
        [{}, ["email", "password", "firstName", "lastName"]],
        [{ email: "not-an-email", password: "password-123", firstName: "A", lastName: "B" }, ["email"]],
        [{ email: uniqueEmail(), password: "short", firstName: "A", lastName: "B" }, ["password"]],
        [{ email: uniqueEmail(), password: "password-123", firstName: "   ", lastName: "B" }, ["firstName"]],
        [{ email: uniqueEmail(), password: "password-123", firstName: "A", lastName: "x".repeat(101) }, ["lastName"]],
        [{ email: uniqueEmail(), password: 12345678, firstName: "A", lastName: "B" }, ["password"]],
        [{ email: uniqueEmail(), password: "password-123", firstName: "A", lastName: "B", role: "admin" }, ["role"]],
        // Postgres text cannot hold NUL: refused as input, never a 500.
        [{ email: `a\u0000${uniqueEmail()}`, password: "password-123", firstName: "A\u0000", lastName: "B" }, ["email", "firstName"]]
      ]
      for (const [body, fields] of cases) {
        const reply = yield* server.request("POST", "/auth/register", { body })
        expect(reply.status, JSON.stringify(body)).toBe(400)
        expect(reply.body._tag).toBe("HttpApiDecodeError")
        const named = reply.body.issues.map((issue: { path: ReadonlyArray<string> }) => issue.path[0])
        expect(named.sort()).toEqual([...fields].sort())
        expect(JSON.stringify(reply.body)).not.toContain("short")
      }
      const unknownRole = yield* server.request("POST", "/auth/login", {
        body: { email: (cases[6]![0] as { email: string }).email, password: "password-123" }
      })
      expect(unknownRole.status).toBe(401)
    }))

  it.effect("malformed JSON is a 400 with a message, oversized bodies a 413", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const malformed = yield* server.request("POST", "/auth/login", {
        raw: "{\"email\":",
        headers: { "content-type": "application/json" }
      })
      expect(malformed.status).toBe(400)
      expect(malformed.body).toEqual({ _tag: "MalformedBody", message: "The request body is not valid JSON" })

      const huge = yield* server.request("POST", "/auth/register", {
        body: { email: uniqueEmail(), password: "x".repeat(2 * 1024 * 1024), firstName: "A", lastName: "B" }
      })
      expect(huge.status).toBe(413)
      expect(huge.body._tag).toBe("PayloadTooLarge")
    }))

  it.effect("an inactive user cannot log in (403) and their token stops working at once (401)", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const user = yield* register("inactive")
      const boss = yield* signIn(TestApp.admin.email, TestApp.admin.password)
      const off = yield* server.request("PATCH", `/users/${user.id}`, { token: boss.token, body: { isActive: false } })
      expect(off.status).toBe(200)
      expect(off.body.isActive).toBe(false)

      const me = yield* server.request("GET", "/users/me", { token: user.token })
      expect(me.status).toBe(401)
      const login = yield* server.request("POST", "/auth/login", { body: { email: user.email, password: user.password } })
      expect(login.status).toBe(403)
      expect(login.body._tag).toBe("AccountInactive")
      const wrongPassword = yield* server.request("POST", "/auth/login", { body: { email: user.email, password: "wrong-password" } })
      expect(wrongPassword.status).toBe(401)
    }))
})
