import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Config, Console, Data, Effect, Layer, Option, Redacted, Schema } from "effect"
import { realpathSync } from "node:fs"
import { pathToFileURL } from "node:url"
import { PasswordHasher } from "./domain/ports/PasswordHasher.js"
import { UsersRepo } from "./domain/ports/UsersRepo.js"
import { Email, type Role, type User } from "./domain/users/Model.js"
import * as Argon2Hasher from "./infra/crypto/Argon2Hasher.js"
import * as SqlUsersRepo from "./infra/sql/UsersRepo.js"
import * as Env from "./infra/Env.js"
import { DatabaseLive } from "./main.js"

interface Seeded {
  readonly email: string
  readonly password: string
  readonly firstName: string
  readonly lastName: string
  readonly role: Role
  readonly trainer?: string
}

/** Development accounts: known passwords, never for production. */
export const accounts: ReadonlyArray<Seeded> = [
  { email: "admin@trainer.chat", password: "admin-password", firstName: "Ada", lastName: "Admin", role: "admin" },
  { email: "tom.trainer@trainer.chat", password: "trainer-password", firstName: "Tom", lastName: "Trainer", role: "trainer" },
  { email: "tina.trainer@trainer.chat", password: "trainer-password", firstName: "Tina", lastName: "Trainer", role: "trainer" },
  { email: "uma@trainer.chat", password: "user-password", firstName: "Uma", lastName: "User", role: "user", trainer: "tom.trainer@trainer.chat" },
  { email: "ulf@trainer.chat", password: "user-password", firstName: "Ulf", lastName: "User", role: "user", trainer: "tom.trainer@trainer.chat" },
  { email: "una@trainer.chat", password: "user-password", firstName: "Una", lastName: "User", role: "user", trainer: "tina.trainer@trainer.chat" },
  { email: "uri@trainer.chat", password: "user-password", firstName: "Uri", lastName: "User", role: "user", trainer: "tina.trainer@trainer.chat" }
]

/** Seeding refused: known passwords do not belong in production. */
export class SeedRefused extends Data.TaggedError("SeedRefused")<{ readonly message: string }> {}

/**
 * With `NODE_ENV=production` the seed refuses unless forced (`SEED_FORCE=1` or `--force`): its
 * accounts have published passwords, admin included.
 */
export const productionGuard = (argv: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const nodeEnv = yield* Config.string("NODE_ENV").pipe(Config.withDefault("development"))
    const forced = argv.includes("--force") || (yield* Config.boolean("SEED_FORCE").pipe(Config.withDefault(false)))
    if (nodeEnv !== "production" || forced) return
    return yield* new SeedRefused({
      message: "npm run seed refused: NODE_ENV=production and its accounts have published passwords " +
        "(admin included). Create the first admin with ADMIN_EMAIL/ADMIN_PASSWORD instead, " +
        "or force it with SEED_FORCE=1 (or --force)."
    })
  })

/** Creates what is missing and assigns trainers; running it again changes nothing. */
export const seed = Effect.gen(function*() {
  const repo = yield* UsersRepo
  const hasher = yield* PasswordHasher
  const byEmail = new Map<string, User>()

  for (const account of accounts) {
    const email = Schema.decodeSync(Email)(account.email)
    const existing = yield* repo.findByEmail(email)
    const user = Option.isSome(existing) ? existing.value : yield* repo.insert({
      email,
      passwordHash: yield* hasher.hash(Redacted.make(account.password)),
      firstName: account.firstName,
      lastName: account.lastName,
      role: account.role,
      avatar: null
    })
    byEmail.set(account.email, user)
  }
  for (const account of accounts) {
    const user = byEmail.get(account.email)
    const trainer = account.trainer === undefined ? undefined : byEmail.get(account.trainer)
    if (user === undefined || trainer === undefined || user.assignedTrainerId !== null) continue
    byEmail.set(account.email, yield* Effect.flatten(repo.assignTrainer(user.id, trainer.id)).pipe(Effect.orDie))
  }
  return [...byEmail.values()]
}).pipe(Effect.withSpan("seed"))

export const SeedLive = Layer.mergeAll(SqlUsersRepo.layer, Argon2Hasher.layer).pipe(Layer.provideMerge(DatabaseLive))

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  Env.loadDotEnv()
  // The guard runs before the database is opened: a refused seed changes nothing.
  Effect.zipRight(productionGuard(process.argv.slice(2)), Effect.provide(seed, SeedLive)).pipe(
    Effect.tap(() =>
      Console.log(
        [
          "Seeded development accounts (password in brackets):",
          ...accounts.map((a) =>
            `  ${a.role.padEnd(8)} ${a.email.padEnd(28)} [${a.password}]${a.trainer ? ` -> ${a.trainer}` : ""}`
          )
        ].join("\n")
      )
    ),
    // A server running on the same embedded database: say so, and change nothing.
    Effect.catchTags({
      SeedRefused: Env.refuse,
      DataDirInUse: (inUse) => Env.refuse({ message: `npm run seed refused, nothing written: ${inUse.message}` })
    }),
    Effect.provide(Env.layer),
    (program) => NodeRuntime.runMain(program, { teardown: Env.teardown })
  )
}
