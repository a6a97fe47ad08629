import { Cause, Effect, Layer, Runtime, Schema } from "effect"
import * as Crypto from "node:crypto"
import { ChatEvent } from "../../domain/chat/Events.js"
import { encodeMessage } from "../wire/MessageJson.js"
import { Bus } from "../../domain/ports/Bus.js"
import { Metrics } from "../../domain/ports/Metrics.js"
import { makeLocalHub } from "../memory/Bus.js"
import { batched } from "./Batched.js"
import { RedisConnection } from "./Redis.js"

/**
 * One Redis message: the events one instance published during one turn of its event loop, in order. The
 * one-event envelope of earlier versions is still read, so that instances upgraded one by one keep hearing
 * the others.
 */
const Envelope = Schema.parseJson(Schema.Union(
  // `at`: when it was published (epoch ms), for the bus lag metric; absent from earlier versions.
  Schema.Struct({ from: Schema.String, at: Schema.optional(Schema.Number), events: Schema.Array(ChatEvent) }),
  Schema.Struct({ from: Schema.String, event: ChatEvent }),
  // The sender could not publish for a while (its events since are lost to the others): a gap for them.
  Schema.Struct({ from: Schema.String, gap: Schema.Literal(true) })
))

/**
 * Events reach this instance's subscribers at once and every other instance
 * through Redis: one channel, a dedicated subscriber connection, and one
 * publish per turn of the event loop carrying that turn's events in order
 * (never one per recipient). While Redis is away, this instance keeps serving its own
 * sockets; when it returns, fan-out resumes by itself and subscribers hear of the
 * gap (`onGap`): clients that missed events are told to catch up by `sinceSeq`.
 */
export const layer = Layer.scoped(
  Bus,
  Effect.gen(function*() {
    const redis = yield* RedisConnection
    const channel = `${redis.settings.prefix}events`
    const instance = Crypto.randomUUID()
    const hub = yield* makeLocalHub
    // Every envelope this instance writes starts so: its own events coming back from Redis are dropped unread.
    const own = `{"from":${JSON.stringify(instance)},`
    const encodeEvent = Schema.encodeSync(ChatEvent)
    // Messages are most of the traffic: written out by hand (the same JSON the schema would write, which
    // the receiving side decodes with the schema); every other event through the schema.
    const encode = (event: ChatEvent) =>
      JSON.stringify(
        event._tag !== "MessageCreated"
          ? encodeEvent(event)
          : event.traceparent === undefined
          ? { _tag: "MessageCreated", message: encodeMessage(event.message) }
          : { _tag: "MessageCreated", message: encodeMessage(event.message), traceparent: event.traceparent }
      )
    const decode = Schema.decodeUnknownEither(Envelope)
    const runtime = yield* Effect.runtime<never>()
    const runSync = Runtime.runSync(runtime)

    // The subscriber may queue its SUBSCRIBE until Redis is there; it resubscribes after every reconnect.
    const subscriber = yield* redis.duplicate("subscriber", { enableOfflineQueue: true, maxRetriesPerRequest: null })
    const metrics = yield* Metrics
    metrics.gauges({
      redisConnected: () => ({ commands: redis.client.status === "ready", subscriber: subscriber.status === "ready" })
    })
    subscriber.on("message", (from: string, text: string) => {
      if (from !== channel || text.startsWith(own)) return
      const decoded = decode(text)
      if (decoded._tag === "Left") {
        return runSync(Effect.logWarning("Dropped an unreadable event from Redis"))
      }
      const envelope = decoded.right
      if (envelope.from === instance) return
      if ("gap" in envelope) return gap()
      const events = "events" in envelope ? envelope.events : [envelope.event]
      if (metrics.enabled) {
        const lag = "at" in envelope && envelope.at !== undefined ? (Date.now() - envelope.at) / 1000 : undefined
        for (const event of events) metrics.busReceived(event._tag, lag)
      }
      for (const event of events) hub.publish(event)
    })
    yield* Effect.promise(() => subscriber.subscribe(channel)).pipe(Effect.forkScoped)

    // What was published while the subscriber was away is gone: once it is subscribed again, subscribers
    // hear of the gap (and refresh from Postgres). ioredis resubscribes by itself after "ready"; the
    // SUBSCRIBE here is answered after that one, so when it settles, events flow again.
    const gapListeners = new Set<() => void>()
    const gap = () => {
      for (const onGap of gapListeners) {
        try {
          onGap()
        } catch (defect) {
          runSync(Effect.logError("Handling a gap in events failed", Cause.die(defect)))
        }
      }
    }
    let connected = false
    let lost = false
    subscriber.on("close", () => {
      if (connected) lost = true
      connected = false
    })
    subscriber.on("ready", () => {
      connected = true
      if (!lost) return
      lost = false
      subscriber.subscribe(channel).then(
        () => {
          runSync(Effect.logInfo("Redis is back: the events missed meanwhile are to be caught up"))
          gap()
        },
        () => {
          // The connection dropped again before answering: the next "ready" tells of the gap.
          lost = true
        }
      )
    })

    // Not awaited: commands on one connection go out in call order, and a send's ack must not wait for
    // Redis. One warning per outage, not one per event. Once publishing works again, the others hear that
    // this instance's events of the outage are lost to them (their own link may never have dropped).
    let degraded = false
    const publishTurn = batched((events: ReadonlyArray<string>) =>
      redis.client.publish(channel, `${own}"at":${Date.now()},"events":[${events.join(",")}]}`).then(() => events)
    )
    const publishRemote = (event: ChatEvent) =>
      Effect.sync(() => {
        publishTurn(encode(event)).then(
          () => {
            if (!degraded) return
            degraded = false
            redis.client.publish(channel, `${own}"gap":true}`).catch(() => {
              degraded = true
            })
          },
          (error: unknown) => {
            if (degraded) return
            degraded = true
            runSync(Effect.logWarning("Redis unavailable: events reach this instance's sockets only", String(error)))
          }
        )
      })

    return Bus.of({
      publish: (event) =>
        Effect.zipRight(
          Effect.sync(() => {
            metrics.busPublished(event._tag)
            hub.publish(event)
          }),
          publishRemote(event)
        ),
      subscribe: (onEvent, onGap) =>
        Effect.zipRight(
          hub.subscribe(onEvent),
          onGap === undefined ? Effect.void : Effect.acquireRelease(
            Effect.sync(() => void gapListeners.add(onGap)),
            () => Effect.sync(() => void gapListeners.delete(onGap))
          )
        )
    })
  })
)
