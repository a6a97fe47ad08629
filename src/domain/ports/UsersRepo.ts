import { Context, type DateTime, type Effect, type Option } from "effect"
import type { EmailTaken } from "../users/Errors.js"
import type { Email, Role, User, UserId } from "../users/Model.js"

export interface NewUser {
  readonly email: Email
  readonly passwordHash: string
  readonly firstName: string
  readonly lastName: string
  readonly role: Role
  readonly avatar: string | null
}

export interface UserPatch {
  readonly firstName?: string
  readonly lastName?: string
  readonly avatar?: string | null
  readonly isActive?: boolean
  readonly passwordHash?: string
  readonly tokensValidAfter?: DateTime.Utc | null
}

export interface UserQuery {
  readonly role?: Role
  /** Only users assigned to this trainer. */
  readonly assignedTrainerId?: UserId
  readonly limit: number
  readonly offset: number
}

export interface Page<A> {
  readonly items: ReadonlyArray<A>
  readonly total: number
}

/**
 * Where users live. Infrastructure failures are defects here: a database
 * outage is not something a caller can handle, and /ready reports it.
 */
export class UsersRepo extends Context.Tag("Ports/UsersRepo")<UsersRepo, {
  readonly insert: (user: NewUser) => Effect.Effect<User, EmailTaken>
  readonly findById: (id: UserId) => Effect.Effect<Option.Option<User>>
  readonly findByEmail: (email: Email) => Effect.Effect<Option.Option<User>>
  readonly list: (query: UserQuery) => Effect.Effect<Page<User>>
  readonly listActiveTrainers: Effect.Effect<ReadonlyArray<User>>
  readonly update: (id: UserId, patch: UserPatch) => Effect.Effect<Option.Option<User>>
  readonly assignTrainer: (id: UserId, trainerId: UserId) => Effect.Effect<Option.Option<User>>
  readonly adminExists: Effect.Effect<boolean>
}>() {}
