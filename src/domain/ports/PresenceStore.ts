import { Context, type DateTime, type Effect, type Option } from "effect"
import type { ConversationId } from "../chat/Model.js"
import type { UserId } from "../users/Model.js"

export interface PresenceState {
  readonly online: boolean
  readonly lastSeenAt: DateTime.Utc | null
}

/**
 * Who is online, across instances. This instance holds leases for the users
 * it has sockets of and renews them with `heartbeat`; a crashed instance's
 * leases run out and `sweep` reports those users offline (to one caller).
 */
export class PresenceStore extends Context.Tag("Ports/PresenceStore")<PresenceStore, {
  /** This instance now holds a socket of the user; true when the user just came online. */
  readonly connect: (userId: UserId) => Effect.Effect<boolean>
  /** This instance no longer holds one; `lastSeenAt` when the user is now offline everywhere. */
  readonly disconnect: (userId: UserId) => Effect.Effect<Option.Option<DateTime.Utc>>
  readonly heartbeat: Effect.Effect<void>
  readonly sweep: Effect.Effect<ReadonlyArray<{ readonly userId: UserId; readonly lastSeenAt: DateTime.Utc }>>
  readonly lookup: (userIds: ReadonlyArray<UserId>) => Effect.Effect<ReadonlyMap<UserId, PresenceState>>
  /**
   * A socket of the user on this instance receives the conversation live (`true`), or none does any more
   * (`false`): held as a lease like presence, renewed by `heartbeat`.
   */
  readonly view: (conversationId: ConversationId, userId: UserId, viewing: boolean) => Effect.Effect<void>
  /** Which of these (conversation, user) pairs some instance has a socket of, live in that conversation. */
  readonly viewing: (
    pairs: ReadonlyArray<{ readonly conversationId: ConversationId; readonly userId: UserId }>
  ) => Effect.Effect<ReadonlyArray<boolean>>
}>() {}
