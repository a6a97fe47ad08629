import { Config, ConfigError, Context, Effect, Either, Option, Redacted, type Scope } from "effect"
import { Redis as IoRedis, type RedisOptions } from "ioredis"
import * as Crypto from "node:crypto"
import { Metrics } from "../../domain/ports/Metrics.js"

/** `host:port,host:port,…` */
const hostPorts = (name: string) =>
  Config.string(name).pipe(
    Config.mapOrFail((text) => {
      const nodes = text.split(",").map((part) => part.trim()).filter((part) => part !== "").map((part) => {
        const at = part.lastIndexOf(":")
        const port = Number(part.slice(at + 1))
        return at > 0 && Number.isInteger(port) && port > 0 && port < 65536 ? { host: part.slice(0, at), port } : undefined
      })
      return nodes.length > 0 && nodes.every((node) => node !== undefined)
        ? Either.right(nodes.filter((node) => node !== undefined))
        : Either.left(ConfigError.InvalidData([], `${name} is a list of host:port, separated by commas`))
    })
  )

/**
 * Redis when `REDIS_URL`, `REDIS_HOST` or `REDIS_SENTINELS` is set; otherwise none (one instance, in-memory
 * layers). With `REDIS_SENTINELS` (and `REDIS_SENTINEL_NAME`), the primary is asked of the sentinels, and
 * asked again after a failover.
 */
export const RedisConfig = Config.all({
  url: Config.option(Config.redacted("REDIS_URL")),
  host: Config.option(Config.string("REDIS_HOST")),
  port: Config.integer("REDIS_PORT").pipe(Config.withDefault(6379)),
  password: Config.option(Config.redacted("REDIS_PASSWORD")),
  sentinels: Config.option(hostPorts("REDIS_SENTINELS")),
  sentinelName: Config.string("REDIS_SENTINEL_NAME").pipe(Config.withDefault("mymaster")),
  /** Every key and channel starts with this, so deployments (and test runs) sharing a Redis never meet. */
  prefix: Config.string("REDIS_PREFIX").pipe(Config.withDefault("trainer-chat:"))
}).pipe(Config.map((c): Option.Option<RedisSettings> => {
  if (Option.isSome(c.sentinels)) {
    return Option.some({
      url: `sentinel://${c.sentinelName}`,
      sentinels: { nodes: c.sentinels.value, name: c.sentinelName },
      password: c.password,
      prefix: c.prefix
    })
  }
  const url = Option.isSome(c.url)
    ? Option.some(Redacted.value(c.url.value))
    : Option.map(c.host, (host) => `redis://${host}:${c.port}`)
  return Option.map(url, (url) => ({ url, sentinels: undefined, password: c.password, prefix: c.prefix }))
}))

export interface RedisSettings {
  /** Where Redis is (with sentinels, only a name for messages: the primary is asked of them). */
  readonly url: string
  readonly sentinels: { readonly nodes: ReadonlyArray<{ readonly host: string; readonly port: number }>; readonly name: string } | undefined
  readonly password: Option.Option<Redacted.Redacted<string>>
  readonly prefix: string
}

export class RedisConnection extends Context.Tag("Infra/RedisConnection")<RedisConnection, {
  /** Commands. Fails fast while Redis is away (no offline queue): callers degrade, they do not wait. */
  readonly client: IoRedis
  readonly settings: RedisSettings
  /** A new connection with the same settings, closed with the scope (subscribers need their own). */
  readonly duplicate: (name: string, options?: RedisOptions) => Effect.Effect<IoRedis, never, Scope.Scope>
}>() {}

const optionsOf = (settings: RedisSettings, name: string): RedisOptions => ({
  connectionName: `trainer-chat:${name}`,
  enableOfflineQueue: false,
  maxRetriesPerRequest: 1,
  // Keep trying for as long as it takes, at most every 2 s: Redis coming back must resume fan-out by itself.
  retryStrategy: (attempt) => Math.min(attempt * 100, 2000),
  lazyConnect: false,
  ...(Option.isSome(settings.password) ? { password: Redacted.value(settings.password.value) } : {})
})

/** A Lua script run by its digest (EVALSHA), its text sent only when Redis lacks it (after a restart). */
export const script = (client: IoRedis, lua: string) => {
  const sha = Crypto.createHash("sha1").update(lua).digest("hex")
  return (keys: ReadonlyArray<string>, args: ReadonlyArray<string | number> = []): Promise<unknown> =>
    client.evalsha(sha, keys.length, ...keys, ...args).catch((error: unknown) =>
      String(error).includes("NOSCRIPT") ? client.eval(lua, keys.length, ...keys, ...args) : Promise.reject(error)
    )
}

/** Every command of the connection that fails is told to `failed` (a metric). */
const countFailures = (client: IoRedis, failed: () => void) => {
  const send = client.sendCommand.bind(client)
  client.sendCommand = (command, stream) => {
    command.promise.catch(failed)
    return send(command, stream)
  }
}

/** An ioredis connection as a scoped resource: quit on release, disconnect if quitting fails. */
export const connect = (settings: RedisSettings, name: string, options: RedisOptions = {}, failed?: () => void) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const client = settings.sentinels === undefined
        ? new IoRedis(settings.url, { ...optionsOf(settings, name), ...options })
        : new IoRedis({
          ...optionsOf(settings, name),
          sentinels: settings.sentinels.nodes.map((node) => ({ ...node })),
          name: settings.sentinels.name,
          ...options
        })
      // Errors are reported through commands and readiness; the event must have a listener or Node throws.
      client.on("error", () => {})
      if (failed !== undefined) countFailures(client, failed)
      return client
    }),
    (client) =>
      Effect.promise(() => client.quit().catch(() => client.disconnect())).pipe(
        // A release is uninterruptible: without this the timeout would wait for a stalled Redis's answer.
        Effect.interruptible,
        Effect.timeout("2 seconds"),
        Effect.orElse(() => Effect.sync(() => client.disconnect()))
      )
  )

/**
 * The commands connection pipelines what is asked in one tick (a batch of sends' rate limits, page
 * versions and publishes) into one write: on the hot path every round trip costs both processes.
 */
export const make = (settings: RedisSettings) =>
  Effect.gen(function*() {
    const metrics = yield* Metrics
    const failed = metrics.enabled ? metrics.redisCommandFailed : undefined
    const client = yield* connect(settings, "commands", { enableAutoPipelining: true }, failed)
    return RedisConnection.of({ client, settings, duplicate: (name, options) => connect(settings, name, options, failed) })
  })
