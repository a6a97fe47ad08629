import { Cause, Effect, Layer, Runtime } from "effect"
import type { ChatEvent } from "../../domain/chat/Events.js"
import { Bus } from "../../domain/ports/Bus.js"
import { Metrics } from "../../domain/ports/Metrics.js"

/**
 * This process's subscribers, called in turn for each event as it is published (no queue, no fiber hop:
 * every message sent goes through here, and queues of linked nodes kept every event alive well past its
 * delivery). The in-memory bus is only this; the Redis bus delivers to it too, before Redis carries the
 * event on.
 */
export const makeLocalHub = Effect.gen(function*() {
  const subscribers = new Set<(event: ChatEvent) => void>()
  const runFork = Runtime.runFork(yield* Effect.runtime<never>())
  return {
    publish: (event: ChatEvent): void => {
      for (const onEvent of subscribers) {
        try {
          onEvent(event)
        } catch (defect) {
          runFork(Effect.logError("Delivering an event failed", Cause.die(defect)))
        }
      }
    },
    subscribe: (onEvent: (event: ChatEvent) => void) =>
      Effect.acquireRelease(
        Effect.sync(() => void subscribers.add(onEvent)),
        () => Effect.sync(() => void subscribers.delete(onEvent))
      )
  }
})

/** One instance, no Redis: the bus is this process's memory. */
export const layer = Layer.scoped(
  Bus,
  Effect.map(Effect.zip(makeLocalHub, Metrics), ([hub, metrics]) =>
    Bus.of({
      publish: (event) =>
        Effect.sync(() => {
          metrics.busPublished(event._tag)
          hub.publish(event)
        }),
      // Nothing published here can be missed: no gaps, `onGap` is never called.
      subscribe: (onEvent) => hub.subscribe(onEvent)
    }))
)
