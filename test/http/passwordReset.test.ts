import { describe, expect, layer } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { smtpFake, type SmtpFake } from "../support/Smtp.js"
import * as TestApp from "../support/TestApp.js"
import { TestServer } from "../support/TestApp.js"
import { createUser, signIn, signInAdmin, uniqueEmail } from "../support/Users.js"

class Smtp extends Context.Tag("Test/Smtp")<Smtp, SmtpFake>() {}

const request = (method: string, path: string, options: TestApp.RequestOptions = {}) =>
  Effect.flatMap(TestServer, (server) => server.request(method, path, options))

const tokenIn = (text: string) => {
  const match = /https:\/\/app\.example\.test\/reset-password\?token=([A-Za-z0-9_-]+)/.exec(text)
  expect(match, text).not.toBeNull()
  return match![1]!
}

// A slow mail server: a reset that waited for it would answer known addresses half a second later.
const withSmtp = Layer.unwrapScoped(Effect.map(smtpFake(500), (smtp) =>
  TestApp.layer({ SMTP_URL: smtp.url, MAIL_FROM: "Trainer Chat <chat@example.test>", PUBLIC_URL: "https://app.example.test" })
    .pipe(Layer.provideMerge(Layer.succeed(Smtp, smtp)))))

describe("password reset", () => {
  layer(withSmtp, { excludeTestServices: true, timeout: 60_000 })("with SMTP", (it) => {
    it.effect("a reset link by mail sets a new password once, and ends every session", () =>
      Effect.gen(function*() {
        const smtp = yield* Smtp
        const user = yield* createUser("user")
        const before = yield* signIn(user.email, user.password)
        const asked = yield* request("POST", "/auth/password-reset", { body: { email: user.email } })
        expect(asked.status).toBe(202)
        const mail = yield* smtp.next(user.email)
        expect(mail.from).toBe("chat@example.test")
        const token = tokenIn(mail.text)
        const confirmed = yield* request("POST", "/auth/password-reset/confirm", {
          body: { token, newPassword: "brand-new-password" }
        })
        expect(confirmed.status).toBe(204)
        expect((yield* request("GET", "/auth/sessions", { token: before.token })).status).toBe(401)
        expect((yield* request("POST", "/auth/login", { body: { email: user.email, password: user.password } })).status)
          .toBe(401)
        yield* signIn(user.email, "brand-new-password")
        const again = yield* request("POST", "/auth/password-reset/confirm", {
          body: { token, newPassword: "another-password-1" }
        })
        expect(again.status).toBe(400)
        expect(again.body._tag).toBe("InvalidResetToken")
        expect((yield* request("POST", "/auth/password-reset/confirm", { body: { token: "nope", newPassword: "x" } })).status)
          .toBe(400)
      }))

    it.effect("an unknown or deactivated address gets the same answer and no mail; an address is limited", () =>
      Effect.gen(function*() {
        const smtp = yield* Smtp
        const boss = yield* signInAdmin
        const known = yield* createUser("user")
        const gone = yield* createUser("user")
        expect((yield* request("PATCH", `/users/${gone.id}`, { token: boss.token, body: { isActive: false } })).status)
          .toBe(200)
        const nobody = uniqueEmail("nobody")
        const answers = yield* Effect.forEach([known.email, nobody, gone.email], (email) =>
          request("POST", "/auth/password-reset", { body: { email } }))
        expect(answers.map((a) => [a.status, a.body])).toEqual([[202, null], [202, null], [202, null]])
        yield* smtp.next(known.email)
        yield* Effect.sleep("500 millis")
        expect(smtp.received.filter((m) => m.to.includes(nobody) || m.to.includes(gone.email))).toEqual([])
        // Three mails per address and window, then 429 (the same for an unknown address).
        for (const email of [known.email, nobody]) {
          const statuses = []
          for (let i = 0; i < 3; i++) statuses.push((yield* request("POST", "/auth/password-reset", { body: { email } })).status)
          expect(statuses).toEqual(email === known.email ? [202, 202, 429] : [202, 202, 429])
        }
      }))

    it.effect("known and unknown addresses answer alike in time too: the mail is sent after the answer", () =>
      Effect.gen(function*() {
        const smtp = yield* Smtp
        const users = yield* Effect.forEach([1, 2, 3], () => createUser("user"))
        const timed = (email: string) =>
          Effect.gen(function*() {
            const started = Date.now()
            expect((yield* request("POST", "/auth/password-reset", { body: { email } })).status).toBe(202)
            return Date.now() - started
          })
        const known = yield* Effect.forEach(users, (u) => timed(u.email))
        const unknown = yield* Effect.forEach([1, 2, 3], () => timed(uniqueEmail("nobody")))
        // The mail server takes 500 ms per mail: an answer that waited for it could not be this close.
        expect(Math.max(...known)).toBeLessThan(Math.min(...unknown) + 250)
        for (const u of users) yield* smtp.next(u.email)
      }))

    it.effect("an admin sends a user a link; others may not", () =>
      Effect.gen(function*() {
        const smtp = yield* Smtp
        const boss = yield* signInAdmin
        const user = yield* createUser("user")
        expect((yield* request("POST", `/auth/password-reset/users/${user.id}`, { token: user.token })).status).toBe(403)
        expect((yield* request("POST", `/auth/password-reset/users/${user.id}`, { token: boss.token })).status).toBe(202)
        tokenIn((yield* smtp.next(user.email)).text)
        expect(
          (yield* request("POST", "/auth/password-reset/users/00000000-0000-4000-8000-000000000000", { token: boss.token }))
            .status
        ).toBe(404)
      }))
  })

  const logs: Array<string> = []
  layer(TestApp.layer({ PUBLIC_URL: "https://app.example.test" }, { logs }), { excludeTestServices: true, timeout: 60_000 })(
    "without SMTP in development",
    (it) => {
      it.effect("the link is written to the log instead of mailed", () =>
        Effect.gen(function*() {
          const user = yield* createUser("user")
          expect((yield* request("POST", "/auth/password-reset", { body: { email: user.email } })).status).toBe(202)
          yield* Effect.sleep("500 millis")
          const line = logs.find((l) => l.includes("reset-password?token="))
          expect(line).toBeDefined()
          const token = tokenIn(line!)
          expect((yield* request("POST", "/auth/password-reset/confirm", { body: { token, newPassword: "from-the-log-1" } }))
            .status).toBe(204)
        }))
    }
  )

  layer(TestApp.layer({ NODE_ENV: "production" }), { excludeTestServices: true, timeout: 60_000 })(
    "without SMTP in production",
    (it) => {
      it.effect("reset answers 503 with a clear message, for every address", () =>
        Effect.gen(function*() {
          const user = yield* createUser("user")
          for (const email of [user.email, uniqueEmail("nobody")]) {
            const reply = yield* request("POST", "/auth/password-reset", { body: { email } })
            expect(reply.status).toBe(503)
            expect(reply.body.message).toMatch(/not available/)
          }
        }))
    }
  )
})
