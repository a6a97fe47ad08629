import { Cache, Config, DateTime, Duration, Effect, Option, Redacted, Runtime } from "effect"
import { createHash, randomBytes } from "node:crypto"
import { Bus } from "../ports/Bus.js"
import { Forbidden, ServiceUnavailable, Unauthorized } from "../Errors.js"
import { Mailer } from "../ports/Mailer.js"
import { PasswordHasher } from "../ports/PasswordHasher.js"
import { RateLimiter } from "../ports/RateLimiter.js"
import { SessionsRepo, type StoredSession } from "../ports/SessionsRepo.js"
import { TokenIssuer } from "../ports/TokenIssuer.js"
import { UsersRepo } from "../ports/UsersRepo.js"
import { AccountInactive, InvalidCredentials, InvalidResetToken, UserNotFound } from "./Errors.js"
import type { Email, User, UserId } from "./Model.js"
import { type SessionId, SessionJson, SessionNotFound } from "./Sessions.js"

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
  /** Opaque, 256 random bits, stored only as a hash; each refresh replaces it. */
  readonly refreshToken: string
  readonly refreshExpiresIn: number
  readonly sessionId: SessionId
  readonly user: User
}

/** How long a device session lives without a refresh (each refresh starts it again), and the retry grace. */
export const SessionsConfig = Config.all({
  refreshTtl: Config.duration("REFRESH_TTL").pipe(Config.withDefault(Duration.days(60))),
  refreshGrace: Config.duration("REFRESH_GRACE").pipe(Config.withDefault(Duration.seconds(10)))
})

/** Where reset links point (the app's page that takes `?token=`), and whether this is production. */
export const ResetConfig = Config.all({
  publicUrl: Config.string("PUBLIC_URL").pipe(Config.withDefault("http://localhost:3000")),
  production: Config.string("NODE_ENV").pipe(Config.withDefault("development"), Config.map((env) => env === "production"))
})

/**
 * What `tokensValidAfter` is set to when every token issued so far must stop working: now, in whole seconds, as
 * tokens carry their issue time (those of this very second stay).
 */
export const tokensValidAfterNow = Effect.map(
  DateTime.now,
  (now) => DateTime.unsafeMake(Math.floor(DateTime.toEpochMillis(now) / 1000) * 1000)
)

const hashOf = (token: string) => createHash("sha256").update(token).digest("base64url")

/** WebSocket tickets start so (access tokens, JWTs, never do) and live this long. */
const ticketPrefix = "wst_"
const ticketTtlSeconds = 30

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
    const sessions = yield* SessionsRepo
    const mailer = yield* Mailer
    const reset = yield* ResetConfig
    // Reset mails per address and window: enough for a lost one, not a mail bomb.
    const resetPerEmail = 3
    const sessionsConfig = yield* SessionsConfig
    const refreshTtlMs = Duration.toMillis(sessionsConfig.refreshTtl)
    const refreshGraceMs = Duration.toMillis(sessionsConfig.refreshGrace)

    // Unknown emails are checked against this hash, so that they cost the same time as a wrong password.
    const decoyHash = yield* hasher.hash(Redacted.make("decoy-password-never-matches"))

    const perIp = (action: "login" | "register" | "reset", origin: Origin) =>
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

    /** An access token for the session and its (new) refresh token. */
    const pairFor = (user: User, session: StoredSession, refreshToken: string) =>
      Effect.map(tokens.issue({ sub: user.id, role: user.role, sid: session.id }), ({ expiresIn, token }): Session => ({
        accessToken: token,
        tokenType: "Bearer",
        expiresIn,
        refreshToken,
        refreshExpiresIn: Math.max(0, Math.floor((session.expiresAt.getTime() - Date.now()) / 1000)),
        sessionId: session.id,
        user
      }))

    /** A new device session for a sign-in. */
    const sessionFor = (user: User, deviceName: string | undefined) =>
      Effect.gen(function*() {
        const refreshToken = randomBytes(32).toString("base64url")
        const session = yield* sessions.create({
          userId: user.id,
          deviceName: deviceName ?? null,
          refreshHash: hashOf(refreshToken),
          expiresAt: new Date(Date.now() + refreshTtlMs)
        })
        return yield* pairFor(user, session, refreshToken)
      })

    /** Ends one session: its refresh token stops working, its access tokens and sockets at once, everywhere. */
    const endSession = (session: StoredSession) =>
      Effect.zipRight(
        sessions.revoke(session.id),
        bus.publish({ _tag: "SessionRevoked", userId: session.userId, sessionId: session.id })
      )

    const invalidRefresh = new Unauthorized({ message: "Invalid or expired refresh token: sign in again" })

    /**
     * A new pair for a refresh token; the token given stops working (rotation). The same token again within
     * `REFRESH_GRACE` of its rotation (the answer was lost) gets the same successor back; later, or once its
     * successor was used in turn, it was stolen: the session ends.
     */
    const refresh = Effect.fn("Auth.refresh")(function*(token: Redacted.Redacted<string>) {
      const presented = Redacted.value(token)
      const hash = hashOf(presented)
      const successor = tokens.successor(presented)
      let session = yield* sessions.rotate(hash, hashOf(successor), new Date(Date.now() + refreshTtlMs))
      if (Option.isNone(session)) {
        const previous = yield* sessions.findByPrevious(hash)
        if (Option.isNone(previous) || previous.value.revokedAt !== null || previous.value.expiresAt.getTime() <= Date.now()) {
          return yield* invalidRefresh
        }
        const s = previous.value
        const retried = s.refreshHash === hashOf(successor) && s.rotatedAt !== null &&
          Date.now() - s.rotatedAt.getTime() <= refreshGraceMs
        if (!retried) {
          yield* Effect.logWarning("Refresh token reused after rotation: session ended").pipe(
            Effect.annotateLogs({ sessionId: s.id, userId: s.userId })
          )
          yield* endSession(s)
          return yield* new Unauthorized({ message: "Refresh token already used: the session is ended; sign in again" })
        }
        session = previous
      }
      const user = yield* repo.findById(session.value.userId)
      if (Option.isNone(user) || !user.value.isActive) {
        yield* endSession(session.value)
        return yield* invalidRefresh
      }
      return yield* pairFor(user.value, session.value, successor)
    })

    const view = (s: StoredSession, current: string | undefined) =>
      new SessionJson({
        id: s.id,
        deviceName: s.deviceName,
        createdAt: DateTime.unsafeFromDate(s.createdAt),
        lastUsedAt: DateTime.unsafeFromDate(s.lastUsedAt),
        expiresAt: DateTime.unsafeFromDate(s.expiresAt),
        current: s.id === current
      })

    const listSessions = Effect.fn("Auth.listSessions")(function*(user: User, current: string | undefined) {
      return (yield* sessions.list(user.id)).map((s) => view(s, current))
    })

    const revokeSession = Effect.fn("Auth.revokeSession")(function*(user: User, id: SessionId) {
      const ended = yield* sessions.revoke(id, user.id)
      if (Option.isNone(ended)) return yield* new SessionNotFound({ id })
      yield* bus.publish({ _tag: "SessionRevoked", userId: user.id, sessionId: id })
    })

    /** This session ends; a token from before sessions has none to end. */
    const logout = Effect.fn("Auth.logout")(function*(user: User, current: string | undefined) {
      if (current === undefined) return
      const ended = yield* sessions.revoke(current as SessionId, user.id)
      if (Option.isSome(ended)) yield* bus.publish({ _tag: "SessionRevoked", userId: user.id, sessionId: current })
    })

    /** Every session of the user ends, and every access token issued so far (those from before sessions too). */
    const logoutAll = Effect.fn("Auth.logoutAll")(function*(user: User) {
      const ended = yield* sessions.revokeAll(user.id)
      yield* repo.update(user.id, { tokensValidAfter: yield* tokensValidAfterNow })
      yield* bus.publish({ _tag: "UserChanged", userId: user.id })
      yield* Effect.forEach(ended, (sessionId) => bus.publish({ _tag: "SessionRevoked", userId: user.id, sessionId }), {
        discard: true
      })
    })

    const register = Effect.fn("Auth.register")(function*(input: Registration, origin: Origin, deviceName?: string) {
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
      return yield* sessionFor(user, deviceName)
    })

    const login = Effect.fn("Auth.login")(function*(input: Credentials, origin: Origin, deviceName?: string) {
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
      return yield* sessionFor(user, deviceName)
    })

    /** The user behind a bearer token, as the database knows them now: deleted or deactivated users are out. */
    /** The signed-in user and when their token expires (seconds since the epoch). */
    // Every request and every socket: untraced, like the rest of the hot path.
    // Every request needs its user: remembered for a few seconds, forgotten as soon as the user changes
    // (here directly, elsewhere through the bus), so a deactivation still takes effect at once.
    const users = yield* Cache.make({ capacity: 100_000, timeToLive: yield* UserCacheTtl, lookup: repo.findById })
    const forget = (userId: UserId) => users.invalidate(userId)
    const runFork = Runtime.runFork(yield* Effect.runtime<never>())
    // Sessions likewise: a live one is remembered a few seconds, an ended one forgotten at once everywhere.
    const liveSessions = yield* Cache.make({
      capacity: 100_000,
      timeToLive: yield* UserCacheTtl,
      lookup: (id: string) => sessions.live(id as SessionId)
    })
    yield* bus.subscribe((event) => {
      if (event._tag === "UserChanged" || event._tag === "UserRevoked") runFork(forget(event.userId))
      else if (event._tag === "SessionRevoked") runFork(liveSessions.invalidate(event.sessionId))
    })

    /**
     * Who a credential signs in, as the database knows them now: an active user, tokens issued after their last
     * revocation (when the issue time is known), a live session (when it has one).
     */
    const signedIn = Effect.fnUntraced(function*(userId: UserId, sid: string | undefined, issuedAt: number | undefined) {
      // A lookup that failed (the database away) is forgotten at once: the next request asks again.
      const user = yield* Effect.onError(users.get(userId), () => users.invalidate(userId))
      if (Option.isNone(user) || !user.value.isActive) return yield* new Unauthorized()
      const validAfter = user.value.tokensValidAfter
      if (issuedAt !== undefined && validAfter !== null && issuedAt * 1000 < DateTime.toEpochMillis(validAfter)) {
        return yield* new Unauthorized({ message: "Token revoked: sign in again" })
      }
      if (sid !== undefined) {
        const live = yield* Effect.onError(liveSessions.get(sid), () => liveSessions.invalidate(sid))
        if (!live) return yield* new Unauthorized({ message: "Session ended: sign in again" })
      }
      return user.value
    })

    const session = Effect.fnUntraced(function*(token: string) {
      const claims = yield* tokens.verify(token)
      const user = yield* signedIn(claims.sub, claims.sid, claims.iat)
      return { user, expiresAt: claims.exp, sessionId: claims.sid }
    })

    const authenticate = (token: string) => Effect.map(session(token), ({ user }) => user)

    /** A one-time ticket for a browser's WebSocket, valid `ticketTtl`: no long-lived credential in a URL. */
    const issueTicket = Effect.fn("Auth.issueTicket")(function*(token: string) {
      const { expiresAt, sessionId, user } = yield* session(token)
      const ticket = `${ticketPrefix}${randomBytes(32).toString("base64url")}`
      yield* sessions.createTicket({
        hash: hashOf(ticket),
        userId: user.id,
        sessionId: (sessionId ?? null) as SessionId | null,
        expiresAt: new Date(Date.now() + ticketTtlSeconds * 1000),
        tokenExpiresAt: new Date(expiresAt * 1000)
      })
      return { ticket, expiresIn: ticketTtlSeconds }
    })

    /** A ticket, taken once: who it is for, as a token's session would say. */
    const redeemTicket = Effect.fnUntraced(function*(ticket: string) {
      const found = yield* sessions.redeemTicket(hashOf(ticket))
      if (Option.isNone(found)) return yield* new Unauthorized({ message: "Invalid, used or expired ticket" })
      const { sessionId, tokenExpiresAt, userId } = found.value
      const user = yield* signedIn(userId, sessionId ?? undefined, undefined)
      return { user, expiresAt: Math.floor(tokenExpiresAt.getTime() / 1000), sessionId: sessionId ?? undefined }
    })

    /** A socket's credential: a ticket (`wst_…`) or an access token. */
    const socketSession = (credential: string) =>
      credential.startsWith(ticketPrefix) ? redeemTicket(credential) : session(credential)

    /**
     * Password reset, asked for by email: always the same answer whatever the address (no account is
     * revealed), the work done in the background so that it takes the same time too. A known, active account gets
     * a one-time link valid 30 minutes. Without SMTP in production there is no way to deliver it: 503 for all.
     */
    const requestReset = Effect.fn("Auth.requestReset")(function*(email: Email, origin: Origin) {
      if (!mailer.configured && reset.production) {
        return yield* new ServiceUnavailable({
          message: "Password reset is not available on this server (no SMTP_URL): ask an administrator"
        })
      }
      yield* Effect.all([
        perIp("reset", origin),
        limiter.hit({ bucket: "reset:email", max: resetPerEmail, window: limits.window }, email)
      ], { discard: true })
      runFork(
        Effect.flatMap(repo.findByEmail(email), (found) =>
          Option.isSome(found) && found.value.isActive ? sendResetLink(found.value) : Effect.void).pipe(
            Effect.catchAllCause((cause) => Effect.logWarning("Password reset mail failed", cause))
          )
      )
    })

    const sendResetLink = (user: User) =>
      Effect.gen(function*() {
        const token = randomBytes(32).toString("base64url")
        yield* sessions.createReset({ hash: hashOf(token), userId: user.id, expiresAt: new Date(Date.now() + 30 * 60_000) })
        const link = `${reset.publicUrl.replace(/\/+$/, "")}/reset-password?token=${token}`
        yield* mailer.send({
          to: user.email,
          subject: "Reset your Trainer Chat password",
          text: `Hello ${user.firstName},\n\nsomeone (hopefully you) asked to reset your Trainer Chat password. ` +
            `Open this link within 30 minutes to choose a new one:\n\n${link}\n\n` +
            "If it was not you, ignore this mail: your password stays as it is.\n"
        })
      })

    /** An admin sends a user a reset link (awaited: the admin hears whether the mail went). */
    const sendReset = Effect.fn("Auth.sendReset")(function*(actor: User, userId: UserId) {
      if (actor.role !== "admin") return yield* new Forbidden({ message: "Only admins can send reset links" })
      if (!mailer.configured && reset.production) {
        return yield* new ServiceUnavailable({ message: "Password reset is not available on this server (no SMTP_URL)" })
      }
      const user = yield* repo.findById(userId)
      if (Option.isNone(user)) return yield* new UserNotFound({ id: userId })
      yield* sendResetLink(user.value).pipe(
        Effect.catchAll((error) =>
          Effect.zipRight(
            Effect.logWarning("Password reset mail failed", error),
            new ServiceUnavailable({ message: "The mail could not be sent: try again later" })
          )
        )
      )
    })

    /** A reset link used: the new password is set, every session and token ends, the link is spent. */
    const confirmReset = Effect.fn("Auth.confirmReset")(function*(token: Redacted.Redacted<string>, password: Redacted.Redacted<string>) {
      const userId = yield* sessions.useReset(hashOf(Redacted.value(token)))
      if (Option.isNone(userId)) return yield* new InvalidResetToken()
      const passwordHash = yield* hasher.hash(password)
      yield* repo.update(userId.value, { passwordHash, tokensValidAfter: yield* tokensValidAfterNow })
      yield* sessions.revokeAll(userId.value)
      yield* forget(userId.value)
      yield* bus.publish({ _tag: "UserRevoked", userId: userId.value, reason: "credentials" })
    })

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

    return {
      register,
      login,
      refresh,
      logout,
      logoutAll,
      listSessions,
      revokeSession,
      authenticate,
      session,
      issueTicket,
      socketSession,
      requestReset,
      sendReset,
      confirmReset,
      ensureAdmin,
      forget
    } as const
  })
}) {}
