import { Cache, Config, DateTime, Duration, Effect, Option, Redacted, Runtime } from "effect"
import { Bus } from "../ports/Bus.js"
import { Unauthorized } from "../Errors.js"
import { PasswordHasher } from "../ports/PasswordHasher.js"
import { RateLimiter } from "../ports/RateLimiter.js"
import { TokenIssuer } from "../ports/TokenIssuer.js"
import { UsersRepo } from "../ports/UsersRepo.js"
import { AccountInactive, InvalidCredentials } from "./Errors.js"
import type { Email, User, UserId } from "./Model.js"

export interface Registration {
  readonly email: Email
  readonly password: Redacted.Redacted<string>
  readonly firstName: string
  readonly lastName: string
}

export interface Credentials {
  readonly email: Email
  readonly password: Redacted.Redacted<string>
}

/** Where an attempt comes from; rate limits count per address as well as per email. */
export interface Origin {
  readonly ip: Option.Option<string>
}

export interface Session {
  readonly accessToken: string
  readonly tokenType: "Bearer"
  readonly expiresIn: number
  readonly user: User
}

export const AuthLimitsConfig = Config.all({
  perIp: Config.integer("AUTH_RATE_LIMIT_PER_IP").pipe(Config.withDefault(30)),
  perEmail: Config.integer("AUTH_RATE_LIMIT_PER_EMAIL").pipe(Config.withDefault(10)),
  window: Config.duration("AUTH_RATE_LIMIT_WINDOW").pipe(Config.withDefault(Duration.minutes(15))),
  delayAfter: Config.integer("AUTH_LOGIN_DELAY_AFTER").pipe(Config.withDefault(5)),
  delayBase: Config.duration("AUTH_LOGIN_DELAY_BASE").pipe(Config.withDefault(Duration.seconds(1))),
  delayMax: Config.duration("AUTH_LOGIN_DELAY_MAX").pipe(Config.withDefault(Duration.minutes(1)))
})

/** How long a signed-in user is remembered between requests; changes on any instance end it at once. */
export const UserCacheTtl = Config.duration("AUTH_USER_CACHE_TTL").pipe(Config.withDefault(Duration.seconds(5)))

export class Auth extends Effect.Service<Auth>()("Users/Auth", {
  scoped: Effect.gen(function*() {
    const repo = yield* UsersRepo
    const bus = yield* Bus
    const hasher = yield* PasswordHasher
    const tokens = yield* TokenIssuer
    const limiter = yield* RateLimiter
    const limits = yield* AuthLimitsConfig

    // Unknown emails are checked against this hash, so that they cost the same time as a wrong password.
    const decoyHash = yield* hasher.hash(Redacted.make("decoy-password-never-matches"))

    const perIp = (action: "login" | "register", origin: Origin) =>
      Option.match(origin.ip, {
        onNone: () => Effect.void,
        onSome: (ip) => Effect.asVoid(limiter.hit({ bucket: `${action}:ip`, max: limits.perIp, window: limits.window }, ip))
      })

    const limit = (action: "register", origin: Origin, email: Email) =>
      Effect.zipRight(
        perIp(action, origin),
        limiter.hit({ bucket: `${action}:email`, max: limits.perEmail, window: limits.window }, email)
      )

    // Logins (OWASP ASVS 2.2.1): a hard limit per address and account, so that failures from elsewhere
    // never lock the owner out; per account, growing delays once failures pile up from anywhere
    // (1 s, 2 s, 4 s, … up to the maximum), counted on failures only and cleared by a success.
    const unlimited = Number.MAX_SAFE_INTEGER
    const pairLimit = { bucket: "login:ip-email", max: limits.perEmail, window: limits.window }
    const failures = { bucket: "login:failures", max: unlimited, window: limits.window }
    const delayed = { bucket: "login:delay", max: 1, window: limits.delayMax }
    const pairKey = (origin: Origin, email: Email) => `${Option.getOrElse(origin.ip, () => "-")} ${email}`
    const delayAfter = (failed: number) =>
      Duration.millis(Math.min(
        Duration.toMillis(limits.delayMax),
        Duration.toMillis(limits.delayBase) * 2 ** Math.min(30, failed - limits.delayAfter - 1)
      ))

    const admitLogin = (origin: Origin, email: Email) =>
      Effect.all([
        perIp("login", origin),
        limiter.hit(pairLimit, pairKey(origin, email)),
        limiter.peek(delayed, email)
      ], { discard: true })

    const loginFailed = (email: Email) =>
      Effect.gen(function*() {
        const failed = yield* limiter.hit(failures, email)
        if (failed > limits.delayAfter) yield* limiter.hit({ ...delayed, window: delayAfter(failed) }, email)
      }).pipe(Effect.catchTag("RateLimited", () => Effect.void))

    const loginSucceeded = (origin: Origin, email: Email) =>
      Effect.all([
        limiter.reset(pairLimit.bucket, pairKey(origin, email)),
        limiter.reset(failures.bucket, email),
        limiter.reset(delayed.bucket, email)
      ], { discard: true })

    const sessionFor = (user: User) =>
      Effect.map(tokens.issue({ sub: user.id, role: user.role }), ({ expiresIn, token }): Session => ({
        accessToken: token,
        tokenType: "Bearer",
        expiresIn,
        user
      }))

    const register = Effect.fn("Auth.register")(function*(input: Registration, origin: Origin) {
      yield* limit("register", origin, input.email)
      const passwordHash = yield* hasher.hash(input.password)
      const user = yield* repo.insert({
        email: input.email,
        passwordHash,
        firstName: input.firstName,
        lastName: input.lastName,
        role: "user",
        avatar: null
      })
      return yield* sessionFor(user)
    })

    const login = Effect.fn("Auth.login")(function*(input: Credentials, origin: Origin) {
      yield* admitLogin(origin, input.email)
      const found = yield* repo.findByEmail(input.email)
      const matches = yield* hasher.verify(Option.match(found, {
        onNone: () => decoyHash,
        onSome: (user) => user.passwordHash
      }), input.password)
      if (Option.isNone(found) || !matches) {
        yield* loginFailed(input.email)
        return yield* new InvalidCredentials()
      }
      yield* loginSucceeded(origin, input.email)
      const user = found.value
      if (!user.isActive) return yield* new AccountInactive()
      return yield* sessionFor(user)
    })

    /** The user behind a bearer token, as the database knows them now: deleted or deactivated users are out. */
    /** The signed-in user and when their token expires (seconds since the epoch). */
    // Every request and every socket: untraced, like the rest of the hot path.
    // Every request needs its user: remembered for a few seconds, forgotten as soon as the user changes
    // (here directly, elsewhere through the bus), so a deactivation still takes effect at once.
    const users = yield* Cache.make({ capacity: 100_000, timeToLive: yield* UserCacheTtl, lookup: repo.findById })
    const forget = (userId: UserId) => users.invalidate(userId)
    const runFork = Runtime.runFork(yield* Effect.runtime<never>())
    yield* bus.subscribe((event) => {
      if (event._tag === "UserChanged" || event._tag === "UserRevoked") runFork(forget(event.userId))
    })

    const session = Effect.fnUntraced(function*(token: string) {
      const claims = yield* tokens.verify(token)
      // A lookup that failed (the database away) is forgotten at once: the next request asks again.
      const user = yield* Effect.onError(users.get(claims.sub), () => users.invalidate(claims.sub))
      if (Option.isNone(user) || !user.value.isActive) return yield* new Unauthorized()
      const validAfter = user.value.tokensValidAfter
      if (validAfter !== null && claims.iat * 1000 < DateTime.toEpochMillis(validAfter)) {
        return yield* new Unauthorized({ message: "Token revoked: sign in again" })
      }
      return { user: user.value, expiresAt: claims.exp }
    })

    const authenticate = (token: string) => Effect.map(session(token), ({ user }) => user)

    /** Creates the first admin from configuration when no admin exists yet. */
    const ensureAdmin = Effect.fn("Auth.ensureAdmin")(
      function*(email: Email, password: Redacted.Redacted<string>) {
        if (yield* repo.adminExists) return Option.none<User>()
        const passwordHash = yield* hasher.hash(password)
        return yield* repo.insert({
          email,
          passwordHash,
          firstName: "Admin",
          lastName: "User",
          role: "admin",
          avatar: null
        }).pipe(
          Effect.map(Option.some),
          // Two instances starting together: the other one created the same admin first.
          Effect.catchTag("EmailTaken", (taken) =>
            Effect.flatMap(repo.findByEmail(email), (existing) =>
              Option.isSome(existing) && existing.value.role === "admin"
                ? Effect.succeed(Option.none<User>())
                : Effect.fail(taken)))
        )
      }
    )

    return { register, login, authenticate, session, ensureAdmin, forget } as const
  })
}) {}
