import { Config, DateTime, Effect, Layer, Option, Schema } from "effect"
import { Metrics } from "../../domain/ports/Metrics.js"
import * as Crypto from "node:crypto"
import type { ConversationId } from "../../domain/chat/Model.js"
import { type PresenceState, PresenceStore } from "../../domain/ports/PresenceStore.js"
import { UserId } from "../../domain/users/Model.js"
import { RedisConnection, script } from "./Redis.js"

// A user is online while some instance holds an unexpired lease: `presence:<user>` maps instance → lease end,
// and `presence-leases` orders every lease by its end so that any instance can sweep the dead ones.
const liveCount = `
local function live(key, now, skip)
  local fields = redis.call('HGETALL', key)
  local n = 0
  for i = 1, #fields, 2 do
    if fields[i] ~= skip and tonumber(fields[i + 1]) > now then n = n + 1 end
  end
  return n
end
`

const connectScript = liveCount + `
local now = tonumber(ARGV[3])
local others = live(KEYS[1], now, ARGV[1])
local had = redis.call('HEXISTS', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[4])
if others == 0 and had == 0 then return 1 end
return 0
`

const disconnectScript = liveCount + `
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[3])
if live(KEYS[1], tonumber(ARGV[2]), '') == 0 then
  redis.call('SET', KEYS[3], ARGV[2])
  return 1
end
return 0
`

const sweepScript = liveCount + `
local now = tonumber(ARGV[1])
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 500)
local offline = {}
for _, member in ipairs(expired) do
  if redis.call('ZREM', KEYS[1], member) == 1 then
    local sep = string.find(member, '|', 1, true)
    local user = string.sub(member, 1, sep - 1)
    local key = ARGV[2] .. 'presence:' .. user
    redis.call('HDEL', key, string.sub(member, sep + 1))
    if live(key, now, '') == 0 then
      redis.call('SET', ARGV[2] .. 'seen:' .. user, now)
      table.insert(offline, user)
    end
  end
end
return offline
`

const PresenceConfig = Config.all({
  leaseMs: Config.integer("PRESENCE_LEASE_MS").pipe(Config.withDefault(20_000))
})

/** Presence shared by every instance, by leases in Redis. While Redis is away, everyone reads as offline. */
export const layer = Layer.scoped(
  PresenceStore,
  Effect.gen(function*() {
    const redis = yield* RedisConnection
    const { leaseMs } = yield* PresenceConfig
    const prefix = redis.settings.prefix
    const instance = Crypto.randomUUID()
    const leases = `${prefix}presence-leases`
    const userKey = (id: UserId) => `${prefix}presence:${id}`
    const seenKey = (id: UserId) => `${prefix}seen:${id}`
    const member = (id: UserId) => `${id}|${instance}`
    const held = new Set<UserId>()
    ;(yield* Metrics).gauges({ presenceLeases: () => held.size + views.size })
    // Who views a conversation: `viewing:<conversation>:<user>` maps instance → lease end, and the key itself
    // expires with the lease (a dead instance's views vanish without a sweep).
    const viewKey = (conversationId: ConversationId, userId: UserId) => `${prefix}viewing:${conversationId}:${userId}`
    /** The viewing keys this instance holds a lease in. */
    const views = new Set<string>()
    const connectRun = script(redis.client, connectScript)
    const disconnectRun = script(redis.client, disconnectScript)
    const sweepRun = script(redis.client, sweepScript)

    const call = <A, I>(what: string, run: () => Promise<unknown>, schema: Schema.Schema<A, I>, fallback: A) =>
      Effect.tryPromise(run).pipe(
        Effect.flatMap(Schema.decodeUnknown(schema)),
        Effect.catchAll((error) => Effect.as(Effect.logDebug(`Presence ${what} failed`, error), fallback))
      )

    // This instance's leases end with it: a clean shutdown takes its users offline at once.
    yield* Effect.addFinalizer(() =>
      Effect.zipRight(
        Effect.forEach(held, (id) =>
          call("release", () => disconnectRun([userKey(id), leases, seenKey(id)], [instance, Date.now(), member(id)]), Schema.Unknown, null)),
        Effect.forEach(views, (key) => call("release view", () => redis.client.hdel(key, instance), Schema.Unknown, null))
      )
    )

    return PresenceStore.of({
      connect: (id) =>
        Effect.suspend(() => {
          held.add(id)
          const now = Date.now()
          return call(
            "connect",
            () => connectRun([userKey(id), leases], [instance, now + leaseMs, now, member(id)]),
            Schema.Number,
            0
          ).pipe(Effect.map((came) => came === 1))
        }),
      disconnect: (id) =>
        Effect.suspend(() => {
          held.delete(id)
          const now = Date.now()
          return call(
            "disconnect",
            () => disconnectRun([userKey(id), leases, seenKey(id)], [instance, now, member(id)]),
            Schema.Number,
            0
          ).pipe(Effect.map((gone) => gone === 1 ? Option.some(DateTime.unsafeMake(now)) : Option.none()))
        }),
      heartbeat: Effect.suspend(() => {
        if (held.size === 0 && views.size === 0) return Effect.void
        const until = Date.now() + leaseMs
        const pipeline = redis.client.pipeline()
        for (const id of held) pipeline.hset(userKey(id), instance, until).zadd(leases, until, member(id))
        for (const key of views) pipeline.hset(key, instance, until).pexpire(key, leaseMs)
        return call("heartbeat", () => pipeline.exec(), Schema.Unknown, null).pipe(Effect.asVoid)
      }),
      sweep: Effect.suspend(() => {
        const now = Date.now()
        return call("sweep", () => sweepRun([leases], [now, prefix]), Schema.Array(UserId), []).pipe(
          Effect.map((ids) => ids.map((userId) => ({ userId, lastSeenAt: DateTime.unsafeMake(now) })))
        )
      }),
      view: (conversationId, userId, viewing) =>
        Effect.suspend(() => {
          const key = viewKey(conversationId, userId)
          if (viewing) {
            views.add(key)
            const until = Date.now() + leaseMs
            return call("view", () => redis.client.pipeline().hset(key, instance, until).pexpire(key, leaseMs).exec(), Schema.Unknown, null)
              .pipe(Effect.asVoid)
          }
          views.delete(key)
          return call("unview", () => redis.client.hdel(key, instance), Schema.Unknown, null).pipe(Effect.asVoid)
        }),
      viewing: (pairs) =>
        Effect.suspend(() => {
          if (pairs.length === 0) return Effect.succeed([])
          const now = Date.now()
          const pipeline = redis.client.pipeline()
          for (const p of pairs) pipeline.hgetall(viewKey(p.conversationId, p.userId))
          return call("viewing", () => pipeline.exec(), Schema.Unknown, null).pipe(
            Effect.map((replies) => {
              const results = Array.isArray(replies) ? replies : []
              return pairs.map((_, i) => {
                const fields = results[i]?.[1]
                return typeof fields === "object" && fields !== null &&
                  Object.values(fields).some((until) => Number(until) > now)
              })
            })
          )
        }),
      lookup: (ids) =>
        Effect.suspend(() => {
          if (ids.length === 0) return Effect.succeed(new Map<UserId, PresenceState>())
          const now = Date.now()
          const pipeline = redis.client.pipeline()
          for (const id of ids) pipeline.hgetall(userKey(id)).get(seenKey(id))
          return call("lookup", () => pipeline.exec(), Schema.Unknown, null).pipe(
            Effect.map((replies) => {
              const results = Array.isArray(replies) ? replies : []
              return new Map(ids.map((id, i): [UserId, PresenceState] => {
                const fields = results[2 * i]?.[1]
                const seen = results[2 * i + 1]?.[1]
                const online = typeof fields === "object" && fields !== null &&
                  Object.values(fields).some((until) => Number(until) > now)
                return [id, { online, lastSeenAt: typeof seen === "string" ? DateTime.unsafeMake(Number(seen)) : null }]
              }))
            })
          )
        })
    })
  })
)
