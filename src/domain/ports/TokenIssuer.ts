import { Context, type Effect } from "effect"
import type { Unauthorized } from "../Errors.js"
import type { Role, UserId } from "../users/Model.js"

export interface Claims {
  readonly sub: UserId
  readonly role: Role
  /** The device session the token belongs to (tokens issued before sessions existed have none). */
  readonly sid?: string
}

export interface VerifiedClaims extends Claims {
  /** When the token expires, in seconds since the epoch. */
  readonly exp: number
  /** When the token was issued, in seconds since the epoch. */
  readonly iat: number
}

export interface IssuedToken {
  readonly token: string
  /** Seconds until the token expires. */
  readonly expiresIn: number
}

export class TokenIssuer extends Context.Tag("Ports/TokenIssuer")<TokenIssuer, {
  readonly issue: (claims: Claims) => Effect.Effect<IssuedToken>
  readonly verify: (token: string) => Effect.Effect<VerifiedClaims, Unauthorized>
  /**
   * The refresh token that follows `refreshToken` when it is rotated: a keyed hash of it, so that a retry of the
   * same refresh (its answer lost) gets the same successor back although only hashes are stored.
   */
  readonly successor: (refreshToken: string) => string
}>() {}
