import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect, Layer, Option } from "effect"
import { realpathSync } from "node:fs"
import { pathToFileURL } from "node:url"
import { Attachments } from "./domain/attachments/Attachments.js"
import { Conversations } from "./domain/chat/Conversations.js"
import { Live } from "./domain/chat/Live.js"
import { Messages } from "./domain/chat/Messages.js"
import { Presence } from "./domain/presence/Presence.js"
import { Push } from "./domain/push/Push.js"
import { Auth } from "./domain/users/Auth.js"
import { FirstAdminLive } from "./domain/users/Bootstrap.js"
import { Users } from "./domain/users/Users.js"
import { Webhooks } from "./domain/webhooks/Webhooks.js"
import * as Argon2Hasher from "./infra/crypto/Argon2Hasher.js"
import * as JoseTokens from "./infra/crypto/JoseTokens.js"
import * as JwtSecret from "./infra/crypto/JwtSecret.js"
import * as Env from "./infra/Env.js"
import * as Logging from "./infra/Logging.js"
import * as SmtpMailer from "./infra/mail/Smtp.js"
import * as SharpImages from "./infra/media/Sharp.js"
import * as PushSenders from "./infra/push/Senders.js"
import * as WebhookSender from "./infra/webhooks/Sender.js"
import * as MemoryBus from "./infra/memory/Bus.js"
import * as MemoryPageVersions from "./infra/memory/PageVersions.js"
import * as MemoryPresenceStore from "./infra/memory/PresenceStore.js"
import * as MemoryRateLimiter from "./infra/memory/RateLimiter.js"
import * as RedisBus from "./infra/redis/Bus.js"
import * as RedisPageVersions from "./infra/redis/PageVersions.js"
import * as RedisPresenceStore from "./infra/redis/PresenceStore.js"
import * as RedisRateLimiter from "./infra/redis/RateLimiter.js"
import * as Redis from "./infra/redis/Redis.js"
import * as SqlAttachmentsRepo from "./infra/sql/AttachmentsRepo.js"
import * as SqlAuditLog from "./infra/sql/AuditLog.js"
import * as SqlClientLive from "./infra/sql/Client.js"
import { DataDirLock } from "./infra/sql/DataDirLock.js"
import * as SqlConversationsRepo from "./infra/sql/ConversationsRepo.js"
import * as SqlHistoryJson from "./infra/sql/HistoryJson.js"
import * as SqlMessagesRepo from "./infra/sql/MessagesRepo.js"
import * as SqlPushRepo from "./infra/sql/PushRepo.js"
import * as Migrations from "./infra/sql/Migrations.js"
import * as SqlSessionsRepo from "./infra/sql/SessionsRepo.js"
import * as SqlUsersRepo from "./infra/sql/UsersRepo.js"
import * as SqlWebhooksRepo from "./infra/sql/WebhooksRepo.js"
import * as Storage from "./infra/storage/Storage.js"
import * as TelemetryMetrics from "./infra/telemetry/Metrics.js"
import * as Tracing from "./infra/telemetry/Tracing.js"
import * as Listener from "./server/Listener.js"
import { Api } from "./http/Api.js"
import { ClientEvents, ErrorCode } from "./ws/Protocol.js"
import type { ChatEvent } from "./domain/chat/Events.js"
import * as HttpApi from "@effect/platform/HttpApi"

/** Every bus event's name (a metric label): the record makes the compiler insist on each. */
const busEvents: Record<ChatEvent["_tag"], null> = {
  MessageCreated: null,
  MessagesRead: null,
  ConversationClosed: null,
  ConversationArchived: null,
  UserTyping: null,
  UserJoined: null,
  UserLeft: null,
  PresenceChanged: null,
  UserChanged: null,
  UserRevoked: null,
  SessionRevoked: null
}

/** The REST API's route templates, for the request metrics' `route` label. */
const routeTemplates = () => {
  const routes: Array<string> = []
  HttpApi.reflect(Api, { onGroup: () => {}, onEndpoint: ({ endpoint }) => void routes.push(endpoint.path) })
  return routes
}

/** Prometheus metrics on `METRICS_PORT` (see infra/telemetry/Metrics.ts); with `METRICS_PORT=0`, none. */
export const MetricsLive = Layer.suspend(() =>
  TelemetryMetrics.layer({
    routes: routeTemplates(),
    clientEvents: Object.keys(ClientEvents),
    errorCodes: ErrorCode.literals,
    busEvents: Object.keys(busEvents)
  })
)

/** Database chosen by config (Postgres or embedded PGlite), migrated before anything reads it. */
export const DatabaseLive = Migrations.layer.pipe(Layer.provideMerge(SqlClientLive.layer))

/**
 * What instances share: Redis when `REDIS_URL`/`REDIS_HOST` is set (fan-out,
 * presence, rate limits, page versions across instances), otherwise this process's memory.
 */
export const SharedLive = Layer.unwrapEffect(
  Effect.map(Redis.RedisConfig, Option.match({
    onNone: () =>
      Layer.mergeAll(
        TelemetryMetrics.countRejections(MemoryRateLimiter.layer),
        Tracing.tracedBus(MemoryBus.layer),
        MemoryPresenceStore.layer,
        MemoryPageVersions.layer
      ),
    onSome: (settings) =>
      Layer.mergeAll(
        TelemetryMetrics.countRejections(RedisRateLimiter.layer),
        Tracing.tracedBus(RedisBus.layer),
        RedisPresenceStore.layer,
        RedisPageVersions.layer
      ).pipe(
        Layer.provideMerge(Layer.scoped(Redis.RedisConnection, Redis.make(settings)))
      )
  }))
)

/** Every port, implemented. */
export const InfraLive = Layer.mergeAll(
  SqlUsersRepo.layer,
  SqlSessionsRepo.layer,
  SqlConversationsRepo.layer,
  SqlMessagesRepo.layer,
  SqlAuditLog.layer,
  SqlAttachmentsRepo.layer,
  SqlPushRepo.layer,
  PushSenders.layer,
  SqlWebhooksRepo.layer,
  WebhookSender.layer,
  Argon2Hasher.layer,
  JoseTokens.layer,
  Storage.layer,
  SharpImages.layer,
  SmtpMailer.layer,
  SharedLive
).pipe(
  Layer.provideMerge(DatabaseLive),
  Layer.provideMerge(MetricsLive),
  Layer.provideMerge(NodeContext.layer)
)

/** What the doors read beside the domain: history pages in their wire form. */
const WireLive = SqlHistoryJson.layer.pipe(Layer.provideMerge(InfraLive))

/** The domain services over the ports, with the first admin in place. */
export const DomainLive = FirstAdminLive.pipe(
  Layer.provideMerge(
    Layer.mergeAll(Attachments.Default, Live.Default, Push.Default, Webhooks.Default).pipe(
      Layer.provideMerge(Layer.mergeAll(Users.Default, Conversations.Default, Messages.Default, Presence.Default)),
      Layer.provideMerge(Auth.Default)
    )
  ),
  Layer.provideMerge(WireLive)
)

/** The embedded database's lock names the port it serves, so that a refused second start can say where. */
const RecordPort = Layer.effectDiscard(
  Effect.gen(function*() {
    const listener = yield* Listener.Listener
    const lock = yield* Effect.serviceOption(DataDirLock)
    if (Option.isSome(lock)) yield* lock.value.record({ port: listener.port })
  })
)

/** The whole product: one uWebSockets.js listener on PORT for REST, docs and WebSocket. */
export const AppLive = RecordPort.pipe(Layer.provideMerge(Listener.layer), Layer.provideMerge(DomainLive))

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  Env.loadDotEnv()
  // The secret is checked before anything touches the database: a refused start changes nothing.
  const program = Effect.zipRight(JwtSecret.load, Layer.launch(AppLive)).pipe(
    // A second process on the same embedded database: one line naming the holder, exit code 1.
    Effect.catchTag("DataDirInUse", Env.refuse),
    // OpenTelemetry's tracer with OTEL_EXPORTER_OTLP_ENDPOINT; without, the tracer is disabled (no span made).
    Effect.provide(Tracing.layer),
    Effect.provide(NodeContext.layer),
    Effect.provide(Logging.layer),
    Effect.provide(Env.layer)
  )
  NodeRuntime.runMain(program, { disablePrettyLogger: true, teardown: Env.teardown })
}
