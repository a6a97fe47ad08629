import { Config, type DateTime, Duration, Effect, Option, Schedule } from "effect"
import { Bus } from "../ports/Bus.js"
import { ConversationsRepo } from "../ports/ConversationsRepo.js"
import { PresenceStore } from "../ports/PresenceStore.js"
import type { UserId } from "../users/Model.js"

const PresenceTiming = Config.all({
  heartbeat: Config.duration("PRESENCE_HEARTBEAT").pipe(Config.withDefault(Duration.seconds(5)))
})

/**
 * Online/offline per user across instances, told to the people they talk
 * with as it changes. Leases are renewed every heartbeat; leases of a crashed
 * instance run out and the sweep takes its users offline.
 */
export class Presence extends Effect.Service<Presence>()("Presence/Presence", {
  scoped: Effect.gen(function*() {
    const store = yield* PresenceStore
    const bus = yield* Bus
    const conversations = yield* ConversationsRepo
    const { heartbeat } = yield* PresenceTiming

    const announce = (userId: UserId, online: boolean, lastSeenAt: DateTime.Utc | null) =>
      Effect.flatMap(conversations.counterpartsOf(userId), (recipientIds) =>
        recipientIds.length === 0
          ? Effect.void
          : bus.publish({ _tag: "PresenceChanged", userId, online, lastSeenAt, recipientIds }))

    /** This instance now has a socket of the user. */
    const connected = Effect.fn("Presence.connected")(function*(userId: UserId) {
      if (yield* store.connect(userId)) yield* announce(userId, true, null)
    })

    /** This instance's last socket of the user closed. */
    const disconnected = Effect.fn("Presence.disconnected")(function*(userId: UserId) {
      const gone = yield* store.disconnect(userId)
      if (Option.isSome(gone)) yield* announce(userId, false, gone.value)
    })

    yield* Effect.gen(function*() {
      yield* store.heartbeat
      const expired = yield* store.sweep
      yield* Effect.forEach(expired, ({ lastSeenAt, userId }) => announce(userId, false, lastSeenAt), { discard: true })
    }).pipe(
      Effect.catchAllCause((cause) => Effect.logWarning("Presence heartbeat failed", cause)),
      Effect.repeat(Schedule.spaced(heartbeat)),
      Effect.forkScoped
    )

    return { connected, disconnected, lookup: store.lookup } as const
  })
}) {}
