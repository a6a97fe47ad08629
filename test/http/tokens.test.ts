import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { SignJWT, UnsecuredJWT } from "jose"
import * as Crypto from "node:crypto"
import { audience, issuer } from "../../src/infra/crypto/JoseTokens.js"
import * as TestApp from "../support/TestApp.js"
import { TestServer } from "../support/TestApp.js"
import { register, signInAdmin } from "../support/Users.js"

interface Forgery {
  readonly sub?: string
  readonly role?: string
  readonly iss?: string
  readonly aud?: string
  /** Seconds from now; negative is in the past. */
  readonly expiresIn?: number
  readonly notBefore?: number
  readonly secret?: string
  readonly alg?: "HS256" | "HS384" | "HS512"
}

const now = () => Math.floor(Date.now() / 1000)

/** A token as JoseTokens issues it, with the test secret, unless told otherwise. */
const forge = (sub: string, options: Omit<Forgery, "sub"> = {}) =>
  Effect.promise(() => {
    const jwt = new SignJWT({ role: options.role ?? "user" })
      .setProtectedHeader({ alg: options.alg ?? "HS256", typ: "JWT" })
      .setSubject(sub)
      .setIssuer(options.iss ?? issuer)
      .setAudience(options.aud ?? audience)
      .setIssuedAt()
      .setExpirationTime(now() + (options.expiresIn ?? 3600))
    if (options.notBefore !== undefined) jwt.setNotBefore(now() + options.notBefore)
    return jwt.sign(new TextEncoder().encode(options.secret ?? TestApp.jwtSecret))
  })

/** The same claims, with `alg: none` and no signature. */
const unsigned = (sub: string) =>
  new UnsecuredJWT({ role: "user" })
    .setSubject(sub)
    .setIssuer(issuer)
    .setAudience(audience)
    .setIssuedAt()
    .setExpirationTime(now() + 3600)
    .encode()

/** A forged token whose header and payload are fine but whose signature is another token's. */
const spliced = (token: string, other: string) => {
  const [header, payload] = token.split(".")
  const signature = other.split(".")[2]
  return `${header}.${payload}.${signature}`
}

const meWith = (authorization: string | undefined) =>
  Effect.flatMap(TestServer, (server) =>
    server.request("GET", "/users/me", authorization === undefined ? {} : { headers: { authorization } }))

layer(TestApp.layer(), { excludeTestServices: true })("tokens", (it) => {
  it.effect("a token forged with the server's secret, issuer and audience is accepted (positive control)", () =>
    Effect.gen(function*() {
      const user = yield* register("forged")
      const token = yield* forge(user.id)
      const me = yield* meWith(`Bearer ${token}`)
      expect(me.status).toBe(200)
      expect(me.body).toMatchObject({ id: user.id, email: user.email, role: "user" })
      expect((yield* meWith(`Bearer ${user.token}`)).status).toBe(200)
    }))

  it.effect("the role comes from the database, not from the token's claim", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const user = yield* register("climber")
      const token = yield* forge(user.id, { role: "admin" })
      const me = yield* meWith(`Bearer ${token}`)
      expect(me.status).toBe(200)
      expect(me.body.role).toBe("user")
      expect((yield* server.request("GET", "/users", { token })).status).toBe(403)
    }))

  it.effect("every tampered, foreign, stale or orphaned token is 401, and the answer never echoes it", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const user = yield* register("victim")
      const deactivated = yield* register("gone")
      const boss = yield* signInAdmin
      const off = yield* server.request("PATCH", `/users/${deactivated.id}`, { token: boss.token, body: { isActive: false } })
      expect(off.status).toBe(200)

      const valid = yield* forge(user.id)
      const foreign = yield* forge(user.id, { secret: "another-secret-0123456789abcdef0123456789" })
      const cases: ReadonlyArray<readonly [string, string | undefined]> = [
        ["no Authorization header", undefined],
        ["an empty Authorization header", ""],
        ["Bearer and nothing", "Bearer "],
        ["Basic credentials", `Basic ${Buffer.from("victim:password-123").toString("base64")}`],
        ["a Basic scheme carrying the token", `Basic ${valid}`],
        ["the bare token, no scheme", valid],
        ["a garbage token", "Bearer not-a-jwt"],
        ["three garbage segments", "Bearer aaa.bbb.ccc"],
        ["alg none, unsigned, valid claims", `Bearer ${unsigned(user.id)}`],
        ["alg none with the signature part of a real token", `Bearer ${spliced(unsigned(user.id), valid)}`],
        ["signed with another secret", `Bearer ${foreign}`],
        ["claims of one token, signature of another", `Bearer ${spliced(yield* forge(deactivated.id), valid)}`],
        ["HS512 with the right secret (alg not allowed)", `Bearer ${yield* forge(user.id, { alg: "HS512" })}`],
        ["expired", `Bearer ${yield* forge(user.id, { expiresIn: -60 })}`],
        ["not valid yet", `Bearer ${yield* forge(user.id, { notBefore: 3600 })}`],
        ["wrong audience", `Bearer ${yield* forge(user.id, { aud: "someone-else-api" })}`],
        ["wrong issuer", `Bearer ${yield* forge(user.id, { iss: "someone-else" })}`],
        ["sub is not a UUID", `Bearer ${yield* forge("root")}`],
        ["role claim unknown", `Bearer ${yield* forge(user.id, { role: "superuser" })}`],
        ["a user that does not exist (deleted)", `Bearer ${yield* forge(Crypto.randomUUID())}`],
        ["a deactivated user's forged token", `Bearer ${yield* forge(deactivated.id)}`],
        ["a deactivated user's issued token", `Bearer ${deactivated.token}`]
      ]
      for (const [why, authorization] of cases) {
        const reply = yield* meWith(authorization)
        expect(reply.status, why).toBe(401)
        expect(reply.body._tag, why).toBe("Unauthorized")
        expect(Object.keys(reply.body).sort(), why).toEqual(["_tag", "message"])
        const token = authorization?.split(" ").at(-1) ?? ""
        if (token.length > 8) {
          expect(JSON.stringify(reply.body), why).not.toContain(token)
          expect(JSON.stringify(reply.body), why).not.toContain(token.split(".")[0])
        }
        for (const [, value] of reply.headers) if (token.length > 8) expect(value, why).not.toContain(token)
      }
      expect((yield* meWith(`Bearer ${yield* forge(user.id, { expiresIn: -60 })}`)).body.message).toBe("Token expired")
    }))

  // HttpApiSecurity.bearer strips the first 7 characters of the header whatever
  // they are; src/http/Security.ts checks the scheme itself.
  it.effect("a valid token under another six-letter scheme is 401", () =>
    Effect.gen(function*() {
      const user = yield* register("scheme")
      for (const scheme of ["Digest", "FooBar", "Token:"]) {
        expect((yield* meWith(`${scheme} ${user.token}`)).status, scheme).toBe(401)
      }
    }))
})
