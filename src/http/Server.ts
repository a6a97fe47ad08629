import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { Config, Duration, Effect, Layer } from "effect"
import { AttachmentsConfig, uploadBodyCap } from "../domain/attachments/Attachments.js"
import { Api } from "./Api.js"
import { uploadPath } from "./attachments/Api.js"
import { AttachmentsLive } from "./attachments/Http.js"
import { AuthLive, SessionsLive } from "./auth/Http.js"
import { swaggerUiLayer } from "./Docs.js"
import { ChatLive, ModerationLive } from "./chat/Http.js"
import { problems, requestLog } from "./Middleware.js"
import { PushLive } from "./push/Http.js"
import { WebhooksLive } from "./webhooks/Http.js"
import { corsExposedHeaders, corsOrigins } from "./Shared.js"
import { AuthenticationLive } from "./Security.js"
import { SystemLive } from "./system/Http.js"
import { UsersLive } from "./users/Http.js"

export const HttpConfig = Config.all({
  port: Config.integer("PORT").pipe(
    Config.validate({ message: "PORT must be from 0 to 65535", validation: (p) => p >= 0 && p <= 65535 }),
    Config.withDefault(3000)
  ),
  host: Config.string("HOST").pipe(Config.withDefault("0.0.0.0")),
  /** CORS origins, comma separated; `*` allows any. */
  frontendUrl: Config.string("FRONTEND_URL").pipe(Config.withDefault("*")),
  maxBodyBytes: Config.integer("HTTP_MAX_BODY_BYTES").pipe(Config.withDefault(1024 * 1024)),
  /** A response (a download) that moves no byte for this long is cut: the client stopped reading. */
  sendTimeout: Config.duration("HTTP_SEND_TIMEOUT").pipe(Config.withDefault(Duration.seconds(60)))
})

/** The REST API: contract plus handlers, independent of the server that carries it. */
export const ApiLive = HttpApiBuilder.api(Api).pipe(
  Layer.provide([SystemLive, AuthLive, SessionsLive, UsersLive, ChatLive, AttachmentsLive, ModerationLive, PushLive, WebhooksLive]),
  Layer.provide(AuthenticationLive)
)

/** Swagger UI (works offline) at /api and the OpenAPI document at /api/openapi.json. */
export const DocsLive = Layer.mergeAll(
  swaggerUiLayer,
  HttpApiBuilder.middlewareOpenApi({ path: "/api/openapi.json" })
)

const corsFor = (frontendUrl: string) =>
  HttpApiBuilder.middlewareCors({
    allowedOrigins: corsOrigins(frontendUrl),
    allowedHeaders: ["authorization", "content-type"],
    exposedHeaders: corsExposedHeaders,
    maxAge: 600
  })

/** Everything the HTTP app serves: the API, its docs, CORS and the problem answers, whatever server carries it. */
export const RoutesLive = Layer.unwrapEffect(
  Effect.map(Effect.all([HttpConfig, AttachmentsConfig]), ([config, uploads]) =>
    Layer.mergeAll(
      DocsLive,
      corsFor(config.frontendUrl),
      HttpApiBuilder.middleware(problems({
        maxBodyBytes: config.maxBodyBytes,
        streamedBody: (method, path) => method === "POST" && path === uploadPath ? uploadBodyCap(uploads) : undefined
      }))
    ).pipe(Layer.provideMerge(ApiLive)))
)

/**
 * The REST API and its docs, served on whatever `HttpServer` is provided (the uWebSockets.js one in
 * `server/HttpServer.ts`, or Node's in a team's own tests), one log line per request.
 */
export const ServeLive = HttpApiBuilder.serve(requestLog).pipe(Layer.provide(RoutesLive))

/** The same HTTP app as a value, for a caller that carries it itself (a web handler). */
export const makeHttpApp = HttpApiBuilder.httpApp.pipe(
  Effect.map(requestLog),
  Effect.provide(RoutesLive.pipe(Layer.provideMerge(Layer.merge(HttpApiBuilder.Router.Live, HttpApiBuilder.Middleware.layer))))
)
