import { Effect } from "effect"
import * as Crypto from "node:crypto"
import { admin, TestServer } from "./TestApp.js"

export interface SignedIn {
  readonly id: string
  readonly email: string
  readonly password: string
  readonly token: string
}

export const uniqueEmail = (prefix = "user") => `${prefix}-${Crypto.randomBytes(5).toString("hex")}@test.local`

export const signIn = (email: string, password: string) =>
  Effect.gen(function*() {
    const server = yield* TestServer
    const reply = yield* server.request("POST", "/auth/login", { body: { email, password } })
    if (reply.status !== 200) return yield* Effect.dieMessage(`login ${email}: ${reply.status} ${JSON.stringify(reply.body)}`)
    return { id: reply.body.user.id, email, password, token: reply.body.accessToken } satisfies SignedIn
  })

export const signInAdmin = signIn(admin.email, admin.password)

export const register = (prefix = "user") =>
  Effect.gen(function*() {
    const server = yield* TestServer
    const email = uniqueEmail(prefix)
    const password = "password-123"
    const reply = yield* server.request("POST", "/auth/register", {
      body: { email, password, firstName: "Test", lastName: prefix }
    })
    if (reply.status !== 201) return yield* Effect.dieMessage(`register: ${reply.status} ${JSON.stringify(reply.body)}`)
    return { id: reply.body.user.id, email, password, token: reply.body.accessToken } satisfies SignedIn
  })

/** A user of any role, created by the admin, signed in. */
export const createUser = (role: "user" | "trainer" | "admin") =>
  Effect.gen(function*() {
    const server = yield* TestServer
    const boss = yield* signInAdmin
    const email = uniqueEmail(role)
    const password = "password-123"
    const reply = yield* server.request("POST", "/users", {
      token: boss.token,
      body: { email, password, firstName: "Test", lastName: role, role }
    })
    if (reply.status !== 201) return yield* Effect.dieMessage(`create ${role}: ${reply.status} ${JSON.stringify(reply.body)}`)
    return yield* signIn(email, password)
  })

export const assign = (userId: string, trainerId: string) =>
  Effect.gen(function*() {
    const server = yield* TestServer
    const boss = yield* signInAdmin
    const reply = yield* server.request("POST", `/users/${userId}/assign-trainer/${trainerId}`, { token: boss.token })
    if (reply.status !== 200) return yield* Effect.dieMessage(`assign: ${reply.status} ${JSON.stringify(reply.body)}`)
    return reply.body
  })
