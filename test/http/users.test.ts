import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import * as Crypto from "node:crypto"
import * as TestApp from "../support/TestApp.js"
import { TestServer } from "../support/TestApp.js"
import { assign, createUser, register, signIn, signInAdmin, type SignedIn, uniqueEmail } from "../support/Users.js"
import { connect, refusedUpgrade } from "../support/Ws.js"

const userKeys = [
  "assignedTrainerId",
  "avatar",
  "createdAt",
  "email",
  "firstName",
  "id",
  "isActive",
  "lastName",
  "role",
  "updatedAt"
]

const send = (who: SignedIn | undefined, method: string, path: string, body?: unknown) =>
  Effect.flatMap(TestServer, (server) =>
    server.request(method, path, {
      ...(who === undefined ? {} : { token: who.token }),
      ...(body === undefined ? {} : { body })
    }))

const ids = (items: ReadonlyArray<{ readonly id: string }>) => items.map((item) => item.id)

/**
 * Two trainers with one user each, a user with no trainer, and the admin:
 * enough people to exercise every "who may see whom" rule.
 */
const world = Effect.gen(function*() {
  const admin = yield* signInAdmin
  const trainer = yield* createUser("trainer")
  const otherTrainer = yield* createUser("trainer")
  const user = yield* register("mine")
  const otherUser = yield* register("theirs")
  const loner = yield* register("loner")
  yield* assign(user.id, trainer.id)
  yield* assign(otherUser.id, otherTrainer.id)
  return { admin, trainer, otherTrainer, user, otherUser, loner }
})
type World = Effect.Effect.Success<typeof world>
type Person = keyof World

layer(TestApp.layer(), { excludeTestServices: true })("users", (it) => {
  it.effect("GET /users/me answers every role with itself, and 401 without a token", () =>
    Effect.gen(function*() {
      for (const role of ["user", "trainer", "admin"] as const) {
        const who = yield* createUser(role)
        const me = yield* send(who, "GET", "/users/me")
        expect(me.status, role).toBe(200)
        expect(me.body).toMatchObject({ id: who.id, email: who.email, role, isActive: true })
        expect(Object.keys(me.body).sort()).toEqual(userKeys)
      }
      const anonymous = yield* send(undefined, "GET", "/users/me")
      expect(anonymous.status).toBe(401)
      expect(anonymous.body._tag).toBe("Unauthorized")
    }))

  it.effect("GET /users: the admin sees everyone, page by page, and can filter by role", () =>
    Effect.gen(function*() {
      const { admin, trainer, otherTrainer, user, otherUser, loner } = yield* world
      const created = [trainer, otherTrainer, user, otherUser, loner].map((who) => who.id)

      const all = yield* send(admin, "GET", "/users?limit=100")
      expect(all.status).toBe(200)
      expect(all.body).toMatchObject({ limit: 100, offset: 0 })
      expect(all.body.total).toBe(all.body.items.length)
      expect(ids(all.body.items)).toEqual(expect.arrayContaining([admin.id, ...created]))
      for (const item of all.body.items) expect(Object.keys(item).sort()).toEqual(userKeys)

      const byDefault = yield* send(admin, "GET", "/users")
      expect(byDefault.body).toMatchObject({ limit: 20, offset: 0, total: all.body.total })

      const pages: Array<string> = []
      for (const offset of [0, 2, 4]) {
        const page = yield* send(admin, "GET", `/users?limit=2&offset=${offset}`)
        expect(page.status).toBe(200)
        expect(page.body).toMatchObject({ limit: 2, offset, total: all.body.total })
        expect(page.body.items).toHaveLength(2)
        pages.push(...ids(page.body.items))
      }
      expect(pages).toEqual(ids(all.body.items).slice(0, 6))

      const past = yield* send(admin, "GET", `/users?offset=${all.body.total}`)
      expect(past.status).toBe(200)
      expect(past.body).toMatchObject({ items: [], total: all.body.total })

      const trainers = yield* send(admin, "GET", "/users?role=trainer&limit=100")
      expect(trainers.status).toBe(200)
      expect(trainers.body.items.every((item: { role: string }) => item.role === "trainer")).toBe(true)
      expect(ids(trainers.body.items)).toEqual(expect.arrayContaining([trainer.id, otherTrainer.id]))
      expect(trainers.body.total).toBe(all.body.items.filter((item: { role: string }) => item.role === "trainer").length)

      const admins = yield* send(admin, "GET", "/users?role=admin&limit=100")
      expect(ids(admins.body.items)).toContain(admin.id)
      expect(ids(admins.body.items)).not.toContain(user.id)
    }))

  it.effect("GET /users rejects bad query parameters with 400", () =>
    Effect.gen(function*() {
      const admin = yield* signInAdmin
      const bad: ReadonlyArray<readonly [string, string]> = [
        ["limit=0", "limit"],
        ["limit=101", "limit"],
        ["limit=-1", "limit"],
        ["limit=abc", "limit"],
        ["limit=1.5", "limit"],
        ["limit=1&limit=2", "limit"],
        ["offset=-1", "offset"],
        ["offset=abc", "offset"],
        ["role=boss", "role"],
        ["foo=1", "foo"]
      ]
      for (const [query, field] of bad) {
        const reply = yield* send(admin, "GET", `/users?${query}`)
        expect(reply.status, query).toBe(400)
        expect(reply.body._tag, query).toBe("HttpApiDecodeError")
        expect(reply.body.issues.map((issue: { path: ReadonlyArray<string> }) => issue.path[0]), query).toContain(field)
      }
      for (const query of ["limit=1", "limit=100", "offset=0"]) {
        expect((yield* send(admin, "GET", `/users?${query}`)).status, query).toBe(200)
      }
    }))

  it.effect("GET /users: a trainer sees only their assigned users, a user is 403", () =>
    Effect.gen(function*() {
      const { loner, otherTrainer, otherUser, trainer, user } = yield* world
      const second = yield* register("second")
      yield* assign(second.id, trainer.id)

      const mine = yield* send(trainer, "GET", "/users")
      expect(mine.status).toBe(200)
      expect(new Set(ids(mine.body.items))).toEqual(new Set([user.id, second.id]))
      expect(mine.body.total).toBe(2)

      const page = yield* send(trainer, "GET", "/users?limit=1&offset=1")
      expect(page.body).toMatchObject({ total: 2, limit: 1, offset: 1 })
      expect(page.body.items).toHaveLength(1)

      const filtered = yield* send(trainer, "GET", "/users?role=trainer")
      expect(filtered.body).toMatchObject({ items: [], total: 0 })

      const theirs = yield* send(otherTrainer, "GET", "/users")
      expect(ids(theirs.body.items)).toEqual([otherUser.id])

      const fresh = yield* createUser("trainer")
      expect((yield* send(fresh, "GET", "/users")).body).toMatchObject({ items: [], total: 0 })

      for (const who of [user, loner]) {
        const denied = yield* send(who, "GET", "/users")
        expect(denied.status).toBe(403)
        expect(denied.body._tag).toBe("Forbidden")
      }
      expect((yield* send(undefined, "GET", "/users")).status).toBe(401)
    }))

  it.effect("GET /users/trainers lists only active trainers, to every signed-in role", () =>
    Effect.gen(function*() {
      const { admin, otherTrainer, trainer, user } = yield* world
      const retired = yield* createUser("trainer")
      expect((yield* send(admin, "PATCH", `/users/${retired.id}`, { isActive: false })).status).toBe(200)

      for (const who of [user, trainer, admin]) {
        const reply = yield* send(who, "GET", "/users/trainers")
        expect(reply.status).toBe(200)
        expect(reply.body.every((item: { role: string; isActive: boolean }) => item.role === "trainer" && item.isActive))
          .toBe(true)
        expect(ids(reply.body)).toEqual(expect.arrayContaining([trainer.id, otherTrainer.id]))
        expect(ids(reply.body)).not.toContain(retired.id)
        expect(ids(reply.body)).not.toContain(admin.id)
      }
      expect((yield* send(undefined, "GET", "/users/trainers")).status).toBe(401)
    }))

  it.effect("GET /users/:id: oneself, one's trainer, a trainer's users; admins anyone; the rest is 404", () =>
    Effect.gen(function*() {
      const people = yield* world
      const cases: ReadonlyArray<readonly [Person, Person, 200 | 404]> = [
        ["user", "user", 200],
        ["user", "trainer", 200],
        ["user", "otherTrainer", 404],
        ["user", "otherUser", 404],
        ["user", "loner", 404],
        ["user", "admin", 404],
        ["loner", "trainer", 404],
        ["trainer", "trainer", 200],
        ["trainer", "user", 200],
        ["trainer", "otherUser", 404],
        ["trainer", "loner", 404],
        ["trainer", "otherTrainer", 404],
        ["trainer", "admin", 404],
        ["admin", "admin", 200],
        ["admin", "user", 200],
        ["admin", "trainer", 200],
        ["admin", "loner", 200],
        ["admin", "otherTrainer", 200]
      ]
      for (const [actor, target, status] of cases) {
        const reply = yield* send(people[actor], "GET", `/users/${people[target].id}`)
        expect(reply.status, `${actor} -> ${target}`).toBe(status)
        if (status === 200) {
          expect(reply.body.id).toBe(people[target].id)
          expect(Object.keys(reply.body).sort()).toEqual(userKeys)
        } else {
          expect(reply.body).toEqual({ _tag: "UserNotFound", id: people[target].id, message: "User not found" })
        }
      }

      const unknown = Crypto.randomUUID()
      for (const who of [people.admin, people.user]) {
        const reply = yield* send(who, "GET", `/users/${unknown}`)
        expect(reply.status).toBe(404)
        expect(reply.body).toEqual({ _tag: "UserNotFound", id: unknown, message: "User not found" })
      }
      for (const malformed of ["not-a-uuid", "123", `${unknown}x`]) {
        const reply = yield* send(people.admin, "GET", `/users/${malformed}`)
        expect(reply.status, malformed).toBe(400)
        expect(reply.body._tag).toBe("HttpApiDecodeError")
      }
      expect((yield* send(undefined, "GET", `/users/${people.user.id}`)).status).toBe(401)
    }))

  it.effect("POST /users: the admin creates every role (201, no hash), others are 403", () =>
    Effect.gen(function*() {
      const admin = yield* signInAdmin
      for (const role of ["user", "trainer", "admin"] as const) {
        const email = uniqueEmail(role)
        const avatar = role === "trainer" ? "https://example.com/a.png" : null
        const reply = yield* send(admin, "POST", "/users", {
          email: ` ${email.toUpperCase()}`,
          password: "password-123",
          firstName: " New ",
          lastName: role,
          role,
          ...(avatar === null ? {} : { avatar })
        })
        expect(reply.status, role).toBe(201)
        expect(Object.keys(reply.body).sort()).toEqual(userKeys)
        expect(reply.body).toMatchObject({ email, firstName: "New", role, avatar, isActive: true, assignedTrainerId: null })
        expect(JSON.stringify(reply.body)).not.toMatch(/password/i)
        const session = yield* signIn(email, "password-123")
        expect(session.id).toBe(reply.body.id)
      }

      const { trainer, user } = yield* world
      for (const who of [trainer, user]) {
        const denied = yield* send(who, "POST", "/users", {
          email: uniqueEmail("nope"),
          password: "password-123",
          firstName: "A",
          lastName: "B",
          role: "admin"
        })
        expect(denied.status).toBe(403)
        expect(denied.body._tag).toBe("Forbidden")
      }
      const anonymous = yield* send(undefined, "POST", "/users", {
        email: uniqueEmail(),
        password: "password-123",
        firstName: "A",
        lastName: "B",
        role: "user"
      })
      expect(anonymous.status).toBe(401)

      const taken = yield* send(admin, "POST", "/users", {
        email: user.email.toUpperCase(),
        password: "password-123",
        firstName: "A",
        lastName: "B",
        role: "trainer"
      })
      expect(taken.status).toBe(409)
      expect(taken.body._tag).toBe("EmailTaken")
    }))

  it.effect("POST /users: bad bodies are 400 naming each field", () =>
    Effect.gen(function*() {
      const admin = yield* signInAdmin
      const valid = () => ({ email: uniqueEmail(), password: "password-123", firstName: "A", lastName: "B", role: "user" })
      const cases: ReadonlyArray<readonly [unknown, ReadonlyArray<string>]> = [
        [{}, ["email", "password", "firstName", "lastName", "role"]],
        [{ ...valid(), role: "boss" }, ["role"]],
        [{ ...valid(), email: "nope" }, ["email"]],
        [{ ...valid(), password: "short" }, ["password"]],
        [{ ...valid(), firstName: "  " }, ["firstName"]],
        [{ ...valid(), avatar: "ftp://example.com/a.png" }, ["avatar"]],
        [{ ...valid(), isActive: false }, ["isActive"]],
        [{ ...valid(), passwordHash: "x" }, ["passwordHash"]],
        [{ ...valid(), assignedTrainerId: Crypto.randomUUID() }, ["assignedTrainerId"]]
      ]
      for (const [body, fields] of cases) {
        const reply = yield* send(admin, "POST", "/users", body)
        expect(reply.status, JSON.stringify(body)).toBe(400)
        expect(reply.body._tag).toBe("HttpApiDecodeError")
        const named = reply.body.issues.map((issue: { path: ReadonlyArray<string> }) => issue.path[0])
        expect([...new Set(named)].sort(), JSON.stringify(body)).toEqual([...fields].sort())
        expect(JSON.stringify(reply.body)).not.toContain("short")
      }
    }))

  it.effect("PATCH /users/:id: owners change names and avatar, not isActive", () =>
    Effect.gen(function*() {
      const { trainer, user } = yield* world
      for (const who of [user, trainer]) {
        const changed = yield* send(who, "PATCH", `/users/${who.id}`, {
          firstName: " Grace ",
          lastName: "Hopper",
          avatar: "https://example.com/grace.png"
        })
        expect(changed.status).toBe(200)
        expect(changed.body).toMatchObject({
          id: who.id,
          firstName: "Grace",
          lastName: "Hopper",
          avatar: "https://example.com/grace.png"
        })
        expect(Object.keys(changed.body).sort()).toEqual(userKeys)
        const cleared = yield* send(who, "PATCH", `/users/${who.id}`, { avatar: null })
        expect(cleared.body).toMatchObject({ avatar: null, firstName: "Grace" })
        expect((yield* send(who, "GET", "/users/me")).body).toMatchObject({ firstName: "Grace", lastName: "Hopper" })

        for (const isActive of [false, true]) {
          const denied = yield* send(who, "PATCH", `/users/${who.id}`, { isActive })
          expect(denied.status).toBe(403)
          expect(denied.body._tag).toBe("Forbidden")
        }
        expect((yield* send(who, "GET", "/users/me")).body.isActive).toBe(true)
      }
    }))

  it.scoped("PATCH /users/:id: a password changes only with the right currentPassword, and signs out every earlier token", () =>
    Effect.gen(function*() {
      const user = yield* register("pw")
      const attempts: ReadonlyArray<Record<string, unknown>> = [
        { password: "new-password-1" },
        { password: "new-password-1", currentPassword: "wrong-password" },
        { password: "new-password-1", currentPassword: "" }
      ]
      for (const body of attempts) {
        const reply = yield* send(user, "PATCH", `/users/${user.id}`, body)
        expect(reply.status, JSON.stringify(body)).toBe(400)
        expect(reply.body).toEqual({ _tag: "WrongCurrentPassword", message: "currentPassword does not match" })
      }
      expect((yield* signIn(user.email, user.password)).id).toBe(user.id)

      const short = yield* send(user, "PATCH", `/users/${user.id}`, { password: "short", currentPassword: user.password })
      expect(short.status).toBe(400)
      expect(short.body._tag).toBe("HttpApiDecodeError")

      // Another device, signed in earlier (tokens carry whole seconds), with a socket open.
      const device = yield* signIn(user.email, user.password)
      const socket = yield* connect(device.token)
      yield* Effect.sleep("1100 millis")
      const changed = yield* send(user, "PATCH", `/users/${user.id}`, {
        password: "new-password-1",
        currentPassword: user.password
      })
      expect(changed.status).toBe(200)
      expect(JSON.stringify(changed.body)).not.toMatch(/password/i)

      const server = yield* TestServer
      const old = yield* server.request("POST", "/auth/login", { body: { email: user.email, password: user.password } })
      expect(old.status).toBe(401)
      // Every token issued before the change is void, on REST and WebSocket alike.
      for (const stale of [user, device]) {
        const me = yield* send(stale, "GET", "/users/me")
        expect([me.status, me.body.message]).toEqual([401, "Token revoked: sign in again"])
      }
      expect((yield* socket.closed).code).toBe(4004)
      expect((yield* refusedUpgrade(device.token)).message).toMatch(/^401 /)
      const fresh = yield* signIn(user.email, "new-password-1")
      expect(fresh.id).toBe(user.id)
      expect((yield* send(fresh, "GET", "/users/me")).status).toBe(200)
    }))

  it.effect("PATCH /users/:id: admins change names and isActive, but not their own isActive nor passwords", () =>
    Effect.gen(function*() {
      const { admin, trainer, user } = yield* world
      const renamed = yield* send(admin, "PATCH", `/users/${user.id}`, { firstName: "Renamed", lastName: "ByAdmin" })
      expect(renamed.status).toBe(200)
      expect(renamed.body).toMatchObject({ id: user.id, firstName: "Renamed", lastName: "ByAdmin", role: "user" })

      const off = yield* send(admin, "PATCH", `/users/${trainer.id}`, { isActive: false })
      expect(off.status).toBe(200)
      expect(off.body.isActive).toBe(false)
      expect((yield* send(trainer, "GET", "/users/me")).status).toBe(401)
      const on = yield* send(admin, "PATCH", `/users/${trainer.id}`, { isActive: true })
      expect(on.body.isActive).toBe(true)
      // Deactivation ended every session: reactivated, the trainer signs in again.
      expect((yield* send(trainer, "GET", "/users/me")).status).toBe(401)
      const again = yield* signIn(trainer.email, trainer.password)
      expect((yield* send(again, "GET", "/users/me")).status).toBe(200)

      const self = yield* send(admin, "PATCH", `/users/${admin.id}`, { isActive: false })
      expect(self.status).toBe(403)
      expect(self.body._tag).toBe("Forbidden")
      expect((yield* send(admin, "GET", "/users/me")).body.isActive).toBe(true)

      const otherAdmin = yield* createUser("admin")
      const peer = yield* send(admin, "PATCH", `/users/${otherAdmin.id}`, { isActive: false })
      expect(peer.status).toBe(200)
      expect((yield* send(otherAdmin, "GET", "/users/me")).status).toBe(401)

      const password = yield* send(admin, "PATCH", `/users/${user.id}`, {
        password: "admin-chosen-1",
        currentPassword: TestApp.admin.password
      })
      expect(password.status).toBe(403)
      expect(password.body._tag).toBe("Forbidden")
      expect((yield* signIn(user.email, user.password)).id).toBe(user.id)

      const unknown = yield* send(admin, "PATCH", `/users/${Crypto.randomUUID()}`, { firstName: "Nobody" })
      expect(unknown.status).toBe(404)
      expect(unknown.body._tag).toBe("UserNotFound")
      expect((yield* send(admin, "PATCH", "/users/not-a-uuid", { firstName: "Nobody" })).status).toBe(400)
    }))

  it.effect("PATCH /users/:id of someone else: 403 when visible, 404 when not", () =>
    Effect.gen(function*() {
      const people = yield* world
      const cases: ReadonlyArray<readonly [Person, Person, 403 | 404]> = [
        ["user", "trainer", 403],
        ["trainer", "user", 403],
        ["user", "otherUser", 404],
        ["user", "otherTrainer", 404],
        ["user", "admin", 404],
        ["trainer", "loner", 404],
        ["trainer", "otherTrainer", 404],
        ["trainer", "admin", 404]
      ]
      for (const [actor, target, status] of cases) {
        for (const body of [{ firstName: "Hijacked" }, { isActive: false }]) {
          const reply = yield* send(people[actor], "PATCH", `/users/${people[target].id}`, body)
          expect(reply.status, `${actor} -> ${target} ${JSON.stringify(body)}`).toBe(status)
          expect(reply.body._tag).toBe(status === 403 ? "Forbidden" : "UserNotFound")
        }
      }
      for (const who of Object.values(people)) {
        const me = yield* send(who, "GET", "/users/me")
        expect(me.status).toBe(200)
        expect(me.body.firstName).not.toBe("Hijacked")
      }
      expect((yield* send(undefined, "PATCH", `/users/${people.user.id}`, { firstName: "Anon" })).status).toBe(401)
    }))

  it.effect("PATCH /users/:id rejects unknown fields and bad values with 400", () =>
    Effect.gen(function*() {
      const { admin, user } = yield* world
      const cases: ReadonlyArray<readonly [unknown, ReadonlyArray<string>]> = [
        [{ role: "admin" }, ["role"]],
        [{ email: uniqueEmail() }, ["email"]],
        [{ passwordHash: "x" }, ["passwordHash"]],
        [{ assignedTrainerId: admin.id }, ["assignedTrainerId"]],
        [{ firstName: "" }, ["firstName"]],
        [{ lastName: "x".repeat(101) }, ["lastName"]],
        [{ avatar: "not a url" }, ["avatar"]],
        [{ isActive: "no" }, ["isActive"]]
      ]
      for (const who of [user, admin]) {
        for (const [body, fields] of cases) {
          const reply = yield* send(who, "PATCH", `/users/${user.id}`, body)
          expect(reply.status, JSON.stringify(body)).toBe(400)
          expect(reply.body._tag).toBe("HttpApiDecodeError")
          const named = reply.body.issues.map((issue: { path: ReadonlyArray<string> }) => issue.path[0])
          expect([...new Set(named)].sort(), JSON.stringify(body)).toEqual([...fields].sort())
        }
      }
      const me = yield* send(user, "GET", "/users/me")
      expect(me.body).toMatchObject({ role: "user", email: user.email, isActive: true })
    }))

  it.effect("POST /users/:id/assign-trainer/:trainerId: the admin assigns users to active trainers", () =>
    Effect.gen(function*() {
      const { admin, loner, otherTrainer, otherUser, trainer, user } = yield* world
      const path = (userId: string, trainerId: string) => `/users/${userId}/assign-trainer/${trainerId}`

      const assigned = yield* send(admin, "POST", path(loner.id, trainer.id))
      expect(assigned.status).toBe(200)
      expect(assigned.body).toMatchObject({ id: loner.id, assignedTrainerId: trainer.id })
      expect((yield* send(loner, "GET", "/users/me")).body.assignedTrainerId).toBe(trainer.id)
      expect((yield* send(trainer, "GET", `/users/${loner.id}`)).status).toBe(200)

      const moved = yield* send(admin, "POST", path(loner.id, otherTrainer.id))
      expect(moved.status).toBe(200)
      expect(moved.body.assignedTrainerId).toBe(otherTrainer.id)
      expect((yield* send(trainer, "GET", `/users/${loner.id}`)).status).toBe(404)
      expect((yield* send(loner, "GET", `/users/${trainer.id}`)).status).toBe(404)
      expect((yield* send(loner, "GET", `/users/${otherTrainer.id}`)).status).toBe(200)

      const retired = yield* createUser("trainer")
      yield* send(admin, "PATCH", `/users/${retired.id}`, { isActive: false })

      const invalid: ReadonlyArray<readonly [string, string, string]> = [
        ["target is a trainer", trainer.id, otherTrainer.id],
        ["target is an admin", admin.id, trainer.id],
        ["trainerId is a user", user.id, otherUser.id],
        ["trainerId is an admin", user.id, admin.id],
        ["trainerId is oneself", user.id, user.id],
        ["trainer is deactivated", user.id, retired.id]
      ]
      for (const [why, userId, trainerId] of invalid) {
        const reply = yield* send(admin, "POST", path(userId, trainerId))
        expect(reply.status, why).toBe(400)
        expect(reply.body._tag, why).toBe("InvalidAssignment")
      }
      expect((yield* send(user, "GET", "/users/me")).body.assignedTrainerId).toBe(trainer.id)

      const nobody = Crypto.randomUUID()
      for (const [userId, trainerId] of [[nobody, trainer.id], [user.id, nobody]] as const) {
        const reply = yield* send(admin, "POST", path(userId, trainerId))
        expect(reply.status).toBe(404)
        expect(reply.body).toMatchObject({ _tag: "UserNotFound", id: nobody })
      }
      expect((yield* send(admin, "POST", path("not-a-uuid", trainer.id))).status).toBe(400)
      expect((yield* send(admin, "POST", path(user.id, "not-a-uuid"))).status).toBe(400)

      for (const who of [trainer, otherTrainer, user, loner]) {
        const denied = yield* send(who, "POST", path(who.id === user.id ? user.id : loner.id, trainer.id))
        expect(denied.status).toBe(403)
        expect(denied.body._tag).toBe("Forbidden")
      }
      expect((yield* send(undefined, "POST", path(loner.id, trainer.id))).status).toBe(401)
      expect((yield* send(loner, "GET", "/users/me")).body.assignedTrainerId).toBe(otherTrainer.id)
    }))
})
