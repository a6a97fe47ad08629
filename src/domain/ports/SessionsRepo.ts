import { Context, type Effect, type Option } from "effect"
import type { SessionId } from "../users/Sessions.js"
import type { UserId } from "../users/Model.js"

export interface StoredSession {
  readonly id: SessionId
  readonly userId: UserId
  readonly deviceName: string | null
  readonly refreshHash: string
  readonly previousHash: string | null
  readonly rotatedAt: Date | null
  readonly createdAt: Date
  readonly lastUsedAt: Date
  readonly expiresAt: Date
  readonly revokedAt: Date | null
}

/** Device sessions and their refresh tokens (hashes only). */
export class SessionsRepo extends Context.Tag("Ports/SessionsRepo")<SessionsRepo, {
  readonly create: (
    session: { readonly userId: UserId; readonly deviceName: string | null; readonly refreshHash: string; readonly expiresAt: Date }
  ) => Effect.Effect<StoredSession>
  /**
   * Replaces a live session's refresh token (`oldHash` → `newHash`), sliding its expiry; none when no live,
   * unexpired session has `oldHash` as its current token. Atomic: of two concurrent rotations one wins.
   */
  readonly rotate: (oldHash: string, newHash: string, expiresAt: Date) => Effect.Effect<Option.Option<StoredSession>>
  /** The session whose previous refresh token hashes to `hash` (a retry, or a reuse). */
  readonly findByPrevious: (hash: string) => Effect.Effect<Option.Option<StoredSession>>
  /** Ends a session (of `userId`, when given); the ended session, none when there was no live one. */
  readonly revoke: (id: SessionId, userId?: UserId) => Effect.Effect<Option.Option<StoredSession>>
  /** Ends every session of the user; the ids ended. */
  readonly revokeAll: (userId: UserId) => Effect.Effect<ReadonlyArray<SessionId>>
  /** The user's live sessions, oldest first. */
  readonly list: (userId: UserId) => Effect.Effect<ReadonlyArray<StoredSession>>
  /** Whether the session is live (not ended, not expired). */
  readonly live: (id: SessionId) => Effect.Effect<boolean>
  /** Stores a WebSocket ticket (its hash), forgetting expired ones. */
  readonly createTicket: (ticket: {
    readonly hash: string
    readonly userId: UserId
    readonly sessionId: SessionId | null
    readonly expiresAt: Date
    readonly tokenExpiresAt: Date
  }) => Effect.Effect<void>
  /** Stores a password reset token (its hash), forgetting expired ones. */
  readonly createReset: (reset: { readonly hash: string; readonly userId: UserId; readonly expiresAt: Date }) => Effect.Effect<void>
  /** Uses an unused, unexpired reset token (once); the user it is for. */
  readonly useReset: (hash: string) => Effect.Effect<Option.Option<UserId>>
  /** Takes an unexpired ticket (once: it is deleted); none when unknown, used or expired. */
  readonly redeemTicket: (hash: string) => Effect.Effect<
    Option.Option<{ readonly userId: UserId; readonly sessionId: SessionId | null; readonly tokenExpiresAt: Date }>
  >
}>() {}
