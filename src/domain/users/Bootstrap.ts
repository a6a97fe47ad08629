import { Config, Effect, Layer, Option, Schema } from "effect"
import { Auth } from "./Auth.js"
import { Email, Password } from "./Model.js"

const AdminConfig = Config.all({
  email: Config.option(Schema.Config("ADMIN_EMAIL", Email)),
  // The same rules as any password, so that the admin can actually log in.
  password: Config.option(Schema.Config("ADMIN_PASSWORD", Password))
})

/** At start-up, `ADMIN_EMAIL`/`ADMIN_PASSWORD` become the first admin when there is none yet. */
export const FirstAdminLive = Layer.effectDiscard(
  Effect.gen(function*() {
    const config = yield* AdminConfig
    if (Option.isNone(config.email) || Option.isNone(config.password)) return
    const auth = yield* Auth
    yield* auth.ensureAdmin(config.email.value, config.password.value).pipe(
      Effect.tap(Option.match({
        onNone: () => Effect.void,
        onSome: (admin) => Effect.logInfo(`Created the first admin ${admin.email}`)
      })),
      Effect.catchTag("EmailTaken", () =>
        Effect.logWarning("ADMIN_EMAIL belongs to an existing non-admin account: no admin was created"))
    )
  })
)
