import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import * as TestApp from "../support/TestApp.js"
import { TestServer } from "../support/TestApp.js"
import { register } from "../support/Users.js"

const login = (email: string, password: string, ip: string) =>
  Effect.flatMap(TestServer, (server) =>
    server.request("POST", "/auth/login", { body: { email, password }, headers: { "x-forwarded-for": ip } }))

const retryAfterOf = (reply: { readonly headers: Headers }) => Number(reply.headers.get("retry-after"))

/** Logs in, waiting out short delays (at most `patienceSeconds` each): the final answer and the time waited. */
const loginPatiently = (email: string, password: string, ip: string, patienceSeconds: number) =>
  Effect.gen(function*() {
    let waited = 0
    for (;;) {
      const reply = yield* login(email, password, ip)
      if (reply.status !== 429 || retryAfterOf(reply) > patienceSeconds) return { reply, waited }
      waited += retryAfterOf(reply)
      yield* Effect.sleep(`${retryAfterOf(reply) * 1000 + 100} millis`)
    }
  })

layer(
  TestApp.layer({
    TRUST_PROXY: "true",
    AUTH_RATE_LIMIT_PER_EMAIL: "10",
    AUTH_RATE_LIMIT_WINDOW: "15 minutes",
    AUTH_LOGIN_DELAY_MAX: "2 seconds"
  }),
  { excludeTestServices: true }
)("login lockout", (it) => {
  it.effect("wrong passwords from one address hard-limit that address only: the owner elsewhere signs in after a short delay at most", () =>
    Effect.gen(function*() {
      const owner = yield* register("owner")
      const attacker = "198.51.100.66"

      // The attacker guesses until refused for the whole window (not just delayed).
      const answers: Array<number> = []
      let hardLimited: { readonly status: number; readonly headers: Headers } | undefined
      for (let attempt = 1; attempt <= 12 && hardLimited === undefined; attempt++) {
        const reply = yield* login(owner.email, `wrong-guess-${attempt}`, attacker)
        answers.push(reply.status)
        if (reply.status === 429 && retryAfterOf(reply) > 2) hardLimited = reply
      }
      expect(hardLimited?.status).toBe(429)
      expect(retryAfterOf(hardLimited!)).toBeGreaterThan(800)
      expect(answers).toHaveLength(11)
      expect(answers.slice(0, 6)).toEqual([401, 401, 401, 401, 401, 401])

      // The owner, from another address, is in at once or after a delay of seconds, not 15 minutes.
      const { reply, waited } = yield* loginPatiently(owner.email, owner.password, "203.0.113.7", 2)
      expect(reply.status).toBe(200)
      expect(waited).toBeLessThanOrEqual(2)

      // The attacker's address stays refused for this account, even with the right password...
      const still = yield* login(owner.email, owner.password, attacker)
      expect(still.status).toBe(429)
      expect(retryAfterOf(still)).toBeGreaterThan(800)
      // ...but not for others.
      const other = yield* register("other")
      expect((yield* login(other.email, other.password, attacker)).status).toBe(200)
    }))
})

layer(
  TestApp.layer({
    TRUST_PROXY: "true",
    AUTH_RATE_LIMIT_PER_EMAIL: "10",
    AUTH_LOGIN_DELAY_AFTER: "2",
    AUTH_LOGIN_DELAY_BASE: "1 second",
    AUTH_LOGIN_DELAY_MAX: "4 seconds"
  }),
  { excludeTestServices: true }
)("login delays", (it) => {
  it.effect("failures from anywhere grow the account's delay (1 s, 2 s, 4 s, capped); only failures count; a success clears them", () =>
    Effect.gen(function*() {
      const owner = yield* register("delayed")
      let n = 0
      // A fresh address each time: the delay is the account's, whatever the address.
      const anywhere = () => `192.0.2.${++n}`
      const fail = () => login(owner.email, "wrong-password", anywhere())

      expect((yield* fail()).status).toBe(401)
      expect((yield* fail()).status).toBe(401)
      const delays: Array<number> = []
      for (let i = 0; i < 4; i++) {
        expect((yield* fail()).status).toBe(401)
        const delayed = yield* fail()
        expect(delayed.status).toBe(429)
        expect(delayed.body._tag).toBe("RateLimited")
        delays.push(retryAfterOf(delayed))
        yield* Effect.sleep(`${retryAfterOf(delayed) * 1000 + 100} millis`)
      }
      expect(delays).toEqual([1, 2, 4, 4])

      // The owner's success clears the failures: the next two wrong passwords are not delayed.
      expect((yield* login(owner.email, owner.password, anywhere())).status).toBe(200)
      expect((yield* fail()).status).toBe(401)
      expect((yield* fail()).status).toBe(401)
      // Successes alone never delay anyone.
      for (let i = 0; i < 5; i++) expect((yield* login(owner.email, owner.password, anywhere())).status).toBe(200)
    }), 60_000)
})
