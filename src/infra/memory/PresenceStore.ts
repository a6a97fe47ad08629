import { DateTime, Effect, Layer, Option } from "effect"
import { Metrics } from "../../domain/ports/Metrics.js"
import { type PresenceState, PresenceStore } from "../../domain/ports/PresenceStore.js"
import type { UserId } from "../../domain/users/Model.js"

/** One instance: presence is which users this process holds sockets of. */
export const layer = Layer.effect(PresenceStore, Effect.gen(function*() {
  const online = new Set<UserId>()
  const lastSeen = new Map<UserId, DateTime.Utc>()
  const views = new Set<string>()
  ;(yield* Metrics).gauges({ presenceLeases: () => online.size + views.size })
  return PresenceStore.of({
    connect: (userId) =>
      Effect.sync(() => {
        const came = !online.has(userId)
        online.add(userId)
        return came
      }),
    disconnect: (userId) =>
      Effect.map(DateTime.now, (now) => {
        if (!online.delete(userId)) return Option.none()
        lastSeen.set(userId, now)
        return Option.some(now)
      }),
    heartbeat: Effect.void,
    sweep: Effect.succeed([]),
    lookup: (userIds) =>
      Effect.sync(() =>
        new Map(userIds.map((id): [UserId, PresenceState] => [id, { online: online.has(id), lastSeenAt: lastSeen.get(id) ?? null }]))
      ),
    view: (conversationId, userId, viewing) =>
      Effect.sync(() => {
        if (viewing) views.add(`${conversationId}|${userId}`)
        else views.delete(`${conversationId}|${userId}`)
      }),
    viewing: (pairs) => Effect.sync(() => pairs.map((p) => views.has(`${p.conversationId}|${p.userId}`)))
  })
}))
