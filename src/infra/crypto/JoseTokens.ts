import { Config, Duration, Effect, Layer, Redacted, Schema } from "effect"
import { errors, jwtVerify, SignJWT } from "jose"
import { createHmac, createSecretKey } from "node:crypto"
import { Unauthorized } from "../../domain/Errors.js"
import { TokenIssuer } from "../../domain/ports/TokenIssuer.js"
import { Role, UserId } from "../../domain/users/Model.js"
import * as JwtSecret from "./JwtSecret.js"

export const issuer = "trainer-chat"
export const audience = "trainer-chat-api"

const Claims = Schema.Struct({
  sub: UserId,
  role: Role,
  sid: Schema.optionalWith(Schema.String, { exact: true }),
  exp: Schema.Number,
  iat: Schema.Number
})
const decodeClaims = Schema.decodeUnknown(Claims)

/** HS256 access tokens from `JWT_SECRET`, living `JWT_TTL` (default 15 minutes: sessions refresh them). */
export const layer = Layer.effect(
  TokenIssuer,
  Effect.gen(function*() {
    // A KeyObject made once: given raw bytes, jose would import the key again on every call.
    const secretText = Redacted.value(yield* JwtSecret.load)
    const secret = createSecretKey(Buffer.from(secretText, "utf8"))
    const ttl = yield* Config.duration("JWT_TTL").pipe(Config.withDefault(Duration.minutes(15)))
    const ttlSeconds = Math.max(1, Math.floor(Duration.toSeconds(ttl)))

    // A token verified once stays valid until it expires (its signature and claims cannot change): clients
    // send the same token on every request, and checking it costs more than the rest of a small request.
    const verifiedCapacity = 50_000
    const verified = new Map<string, typeof Claims.Type>()

    return TokenIssuer.of({
      issue: (claims) =>
        Effect.promise(() =>
          new SignJWT(claims.sid === undefined ? { role: claims.role } : { role: claims.role, sid: claims.sid })
            .setProtectedHeader({ alg: "HS256", typ: "JWT" })
            .setSubject(claims.sub)
            .setIssuer(issuer)
            .setAudience(audience)
            .setIssuedAt()
            .setExpirationTime(`${ttlSeconds}s`)
            .sign(secret)
        ).pipe(
          Effect.map((token) => ({ token, expiresIn: ttlSeconds })),
          Effect.withSpan("TokenIssuer.issue")
        ),
      verify: (token) =>
        Effect.suspend(() => {
          const known = verified.get(token)
          if (known !== undefined && known.exp * 1000 > Date.now()) return Effect.succeed(known)
          return Effect.tryPromise({
            try: () => jwtVerify(token, secret, { algorithms: ["HS256"], issuer, audience, requiredClaims: ["exp", "iat"] }),
            catch: (cause) =>
              new Unauthorized({
                message: cause instanceof errors.JWTExpired ? "Token expired" : "Invalid token"
              })
          }).pipe(
            Effect.flatMap(({ payload }) => decodeClaims(payload)),
            Effect.catchTag("ParseError", () => Effect.fail(new Unauthorized({ message: "Invalid token" }))),
            Effect.tap((claims) =>
              Effect.sync(() => {
                if (verified.size >= verifiedCapacity) verified.delete(verified.keys().next().value!)
                verified.set(token, claims)
              })
            )
          )
        }),
      successor: (refreshToken) =>
        createHmac("sha256", secretText).update(`refresh-successor:${refreshToken}`).digest("base64url")
    })
  })
)
