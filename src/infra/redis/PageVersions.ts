import { Effect, Layer, Option } from "effect"
import type { ConversationId } from "../../domain/chat/Model.js"
import { PageVersions } from "../../domain/ports/PageVersions.js"
import { batched } from "./Batched.js"
import { RedisConnection, script } from "./Redis.js"

const incrScript = "for _, key in ipairs(KEYS) do redis.call('INCR', key) end return #KEYS"

/**
 * Versions every instance sees: a counter per conversation in Redis (INCR after a change, GET
 * before a cached read). While Redis is away nothing cached is served (`current` is None) and
 * bumps that failed are sent again once it is back. Each (re)connection starts a new epoch,
 * part of every version, so that nothing cached before a gap (Redis restarted empty, bumps
 * lost) can match a version read after it.
 */
export const layer = Layer.scoped(
  PageVersions,
  Effect.gen(function*() {
    const redis = yield* RedisConnection
    const key = (id: ConversationId) => `${redis.settings.prefix}pagever:${id}`
    const unsent = new Set<ConversationId>()
    let epoch = 0
    // A turn's bumps go as one script (one Redis, not a cluster); a conversation bumped twice in it is
    // counted once, after both changes.
    const incr = script(redis.client, incrScript)
    const incrAll = batched((ids: ReadonlyArray<ConversationId>) => incr([...new Set(ids)].map(key)).then(() => ids))
    const send = (id: ConversationId) => incrAll(id).then(() => void unsent.delete(id), () => void unsent.add(id))
    const onReady = () => {
      epoch++
      for (const id of [...unsent]) void send(id)
    }
    yield* Effect.acquireRelease(
      Effect.sync(() => redis.client.on("ready", onReady)),
      () => Effect.sync(() => redis.client.off("ready", onReady))
    )
    if (redis.client.status === "ready") epoch++

    return PageVersions.of({
      bump: (id) => Effect.promise(() => send(id)),
      bumpAll: (ids) => Effect.promise(() => Promise.all(ids.map(send))),
      current: (id) =>
        Effect.tryPromise(() => redis.client.get(key(id))).pipe(
          Effect.map((n) => unsent.size > 0 ? Option.none() : Option.some(`${epoch}/${n ?? 0}`)),
          Effect.orElseSucceed(() => Option.none())
        )
    })
  })
)
