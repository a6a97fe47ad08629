import { SqlClient } from "@effect/sql"
import { Effect, Option, type Redacted } from "effect"
import { Bus } from "../ports/Bus.js"
import { ConversationsRepo } from "../ports/ConversationsRepo.js"
import { Forbidden } from "../Errors.js"
import { PasswordHasher } from "../ports/PasswordHasher.js"
import { SessionsRepo } from "../ports/SessionsRepo.js"
import { type Page, type UserPatch, UsersRepo } from "../ports/UsersRepo.js"
import { InvalidAssignment, UserNotFound, WrongCurrentPassword } from "./Errors.js"
import type { Email, Role, User, UserId } from "./Model.js"
import { Auth, tokensValidAfterNow } from "./Auth.js"
import { canView, isAdmin } from "./Policy.js"

export interface CreateUser {
  readonly email: Email
  readonly password: Redacted.Redacted<string>
  readonly firstName: string
  readonly lastName: string
  readonly role: Role
  readonly avatar?: string | null
}

export interface UpdateUser {
  readonly firstName?: string
  readonly lastName?: string
  readonly avatar?: string | null
  readonly isActive?: boolean
  readonly password?: Redacted.Redacted<string>
  readonly currentPassword?: Redacted.Redacted<string>
}

export interface ListUsers {
  readonly role?: Role
  readonly limit: number
  readonly offset: number
}

export class Users extends Effect.Service<Users>()("Users/Users", {
  effect: Effect.gen(function*() {
    const repo = yield* UsersRepo
    const hasher = yield* PasswordHasher
    const sql = yield* SqlClient.SqlClient
    const conversations = yield* ConversationsRepo
    const bus = yield* Bus
    const auth = yield* Auth
    const sessions = yield* SessionsRepo

    /** The user changed: this instance forgets it now, the others when they hear of it. */
    const changed = (userId: UserId) => Effect.zipRight(auth.forget(userId), bus.publish({ _tag: "UserChanged", userId }))

    const notFound = (id: UserId) => new UserNotFound({ id })

    const find = (id: UserId) =>
      repo.findById(id).pipe(Effect.flatMap(Option.match({
        onNone: () => Effect.fail(notFound(id)),
        onSome: Effect.succeed
      })))

    /** A user the actor may not see does not exist, as far as the actor knows. */
    const findVisible = (actor: User, id: UserId) =>
      find(id).pipe(Effect.filterOrFail((target) => canView(actor, target), () => notFound(id)))

    const get = Effect.fn("Users.get")(function*(actor: User, id: UserId) {
      return yield* findVisible(actor, id)
    })

    const list = Effect.fn("Users.list")(function*(actor: User, query: ListUsers) {
      switch (actor.role) {
        case "admin":
          return yield* repo.list(query)
        case "trainer":
          return yield* repo.list({ ...query, assignedTrainerId: actor.id })
        case "user":
          return yield* new Forbidden({ message: "Only admins and trainers can list users" })
      }
    }) satisfies (actor: User, query: ListUsers) => Effect.Effect<Page<User>, Forbidden>

    const listTrainers = repo.listActiveTrainers.pipe(Effect.withSpan("Users.listTrainers"))

    const create = Effect.fn("Users.create")(function*(actor: User, input: CreateUser) {
      if (!isAdmin(actor)) return yield* new Forbidden({ message: "Only admins can create users" })
      const passwordHash = yield* hasher.hash(input.password)
      return yield* repo.insert({
        email: input.email,
        passwordHash,
        firstName: input.firstName,
        lastName: input.lastName,
        role: input.role,
        avatar: input.avatar ?? null
      })
    })

    const update = Effect.fn("Users.update")(function*(actor: User, id: UserId, input: UpdateUser) {
      const target = yield* findVisible(actor, id)
      const self = actor.id === target.id
      const admin = isAdmin(actor)
      if (!self && !admin) return yield* new Forbidden({ message: "You can only change your own profile" })
      if (input.isActive !== undefined && !admin) {
        return yield* new Forbidden({ message: "Only admins can change isActive" })
      }
      if (input.isActive === false && self) {
        return yield* new Forbidden({ message: "Admins cannot deactivate themselves" })
      }
      const patch: { -readonly [K in keyof UserPatch]: UserPatch[K] } = {}
      if (input.firstName !== undefined) patch.firstName = input.firstName
      if (input.lastName !== undefined) patch.lastName = input.lastName
      if (input.avatar !== undefined) patch.avatar = input.avatar
      if (input.isActive !== undefined) patch.isActive = input.isActive
      if (input.password !== undefined) {
        if (!self) return yield* new Forbidden({ message: "Only the owner can change a password" })
        const current = input.currentPassword
        if (current === undefined || !(yield* hasher.verify(target.passwordHash, current))) {
          return yield* new WrongCurrentPassword()
        }
        patch.passwordHash = yield* hasher.hash(input.password)
        // Every token issued so far stops working.
        patch.tokensValidAfter = yield* tokensValidAfterNow
      }
      const updated = yield* repo.update(id, patch).pipe(
        Effect.flatMap(Option.match({ onNone: () => Effect.fail(notFound(id)), onSome: Effect.succeed }))
      )
      // Deactivated, or a new password: every device session ends (refresh tokens included).
      if (input.isActive === false || input.password !== undefined) yield* sessions.revokeAll(id)
      yield* changed(id)
      if (input.isActive === false) yield* bus.publish({ _tag: "UserRevoked", userId: id, reason: "deactivated" })
      if (input.password !== undefined) yield* bus.publish({ _tag: "UserRevoked", userId: id, reason: "credentials" })
      return updated
    })

    const assignTrainer = Effect.fn("Users.assignTrainer")(
      function*(actor: User, userId: UserId, trainerId: UserId) {
        if (!isAdmin(actor)) return yield* new Forbidden({ message: "Only admins can assign trainers" })
        const target = yield* find(userId)
        if (target.role !== "user") {
          return yield* new InvalidAssignment({ message: "Only users with role user can be assigned a trainer" })
        }
        const trainer = yield* find(trainerId)
        if (trainer.role !== "trainer") {
          return yield* new InvalidAssignment({ message: "trainerId must be the id of a trainer" })
        }
        if (!trainer.isActive) {
          return yield* new InvalidAssignment({ message: "The trainer is deactivated" })
        }
        // The old pair's conversation turns read-only; a pair assigned again picks up where it left off.
        const { archived, assigned } = yield* sql.withTransaction(Effect.all({
          assigned: repo.assignTrainer(userId, trainerId),
          archived: conversations.archiveOthers(userId, trainerId),
          reactivated: conversations.reactivate(userId, trainerId)
        })).pipe(Effect.orDie)
        if (Option.isNone(assigned)) return yield* notFound(userId)
        yield* changed(userId)
        yield* Effect.forEach(archived, (c) =>
          bus.publish({ _tag: "ConversationArchived", conversationId: c.id, userId: c.userId, trainerId: c.trainerId }))
        return { user: assigned.value, archived }
      }
    )

    return { get, list, listTrainers, create, update, assignTrainer } as const
  })
}) {}
