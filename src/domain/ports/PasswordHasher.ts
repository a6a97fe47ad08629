import { Context, type Effect, type Redacted } from "effect"

export class PasswordHasher extends Context.Tag("Ports/PasswordHasher")<PasswordHasher, {
  readonly hash: (password: Redacted.Redacted<string>) => Effect.Effect<string>
  /** False for a wrong password or a hash it cannot read; never fails. */
  readonly verify: (hash: string, password: Redacted.Redacted<string>) => Effect.Effect<boolean>
}>() {}
