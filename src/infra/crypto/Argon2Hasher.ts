import { hash, verify } from "@node-rs/argon2"
import { Effect, Layer, Redacted } from "effect"
import { PasswordHasher } from "../../domain/ports/PasswordHasher.js"

// OWASP's argon2id baseline: 19 MiB, 2 passes, 1 lane. The work runs on libuv's thread pool.
const options = { algorithm: 2 /* Argon2id */, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const

export const layer = Layer.succeed(
  PasswordHasher,
  PasswordHasher.of({
    hash: (password) =>
      Effect.promise(() => hash(Redacted.value(password), options)).pipe(Effect.withSpan("PasswordHasher.hash")),
    verify: (digest, password) =>
      Effect.tryPromise(() => verify(digest, Redacted.value(password))).pipe(
        Effect.orElseSucceed(() => false),
        Effect.withSpan("PasswordHasher.verify")
      )
  })
)
