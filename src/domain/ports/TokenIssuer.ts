import { Context, type Effect } from "effect"
import type { Unauthorized } from "../Errors.js"
import type { Role, UserId } from "../users/Model.js"

export interface Claims {
  readonly sub: UserId
  readonly role: Role
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
}>() {}
