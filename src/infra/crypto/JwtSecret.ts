import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import { Config, ConfigError, Effect, Option, Redacted } from "effect"
import * as Crypto from "node:crypto"
import { DataDir } from "../sql/Client.js"

/** Values shipped in examples: a server started with one of them is not secret at all. */
const exampleSecrets = new Set(["your-secret-key", "change-me", "changeme", "secret", "replace-with-a-long-random-string"])
const minLength = 32

/**
 * `JWT_SECRET`, checked. In production a missing, short or example secret stops
 * the start with a one-line reason; in development a missing one is generated
 * once and kept under `DATA_DIR`, so tokens survive a restart.
 */
export const load = Effect.gen(function*() {
  const nodeEnv = yield* Config.string("NODE_ENV").pipe(Config.withDefault("development"))
  const configured = yield* Config.option(Config.redacted("JWT_SECRET"))
  const production = nodeEnv === "production"

  if (Option.isSome(configured)) {
    const value = Redacted.value(configured.value)
    if (exampleSecrets.has(value) || value.length < minLength) {
      if (production) {
        return yield* refuse(
          `${exampleSecrets.has(value) ? "is an example value" : `is shorter than ${minLength} characters`}: production needs a long random secret (e.g. openssl rand -hex 32)`
        )
      }
      yield* Effect.logWarning("JWT_SECRET is weak; fine for development, refused in production")
    }
    return configured.value
  }
  if (production) {
    return yield* refuse("is not set: production needs a long random secret (e.g. openssl rand -hex 32)")
  }

  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const dir = path.resolve(yield* DataDir)
  const file = path.join(dir, "jwt-secret")
  if (yield* fs.exists(file)) {
    const stored = (yield* fs.readFileString(file)).trim()
    if (stored.length >= minLength) return Redacted.make(stored)
  }
  const generated = Crypto.randomBytes(32).toString("hex")
  yield* fs.makeDirectory(dir, { recursive: true })
  yield* fs.writeFileString(file, generated, { mode: 0o600 })
  yield* Effect.logInfo(`JWT_SECRET not set: generated a development secret in ${file}`)
  return Redacted.make(generated)
})

const refuse = (reason: string) => Effect.fail(ConfigError.InvalidData(["JWT_SECRET"], reason))
