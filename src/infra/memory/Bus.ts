import { Effect, Layer, Queue, type Scope } from "effect"
import type { ChatEvent } from "../../domain/chat/Events.js"
import { Bus } from "../../domain/ports/Bus.js"

/**
 * This process's subscribers: each has its own unbounded queue, and a publish puts the event in every
 * one of them at once, in publish order (no fiber hop: every message sent goes through here). The
 * in-memory bus is only this; the Redis bus delivers to it too, before Redis carries the event on.
 */
export const makeLocalHub = Effect.gen(function*() {
  const subscribers = new Set<Queue.Queue<ChatEvent>>()
  yield* Effect.addFinalizer(() => Effect.forEach(subscribers, Queue.shutdown, { discard: true }))
  return {
    publish: (event: ChatEvent): void => {
      for (const queue of subscribers) queue.unsafeOffer(event)
    },
    subscribe: Effect.acquireRelease(
      Effect.tap(Queue.unbounded<ChatEvent>(), (queue) => Effect.sync(() => subscribers.add(queue))),
      (queue) => Effect.zipRight(Effect.sync(() => subscribers.delete(queue)), Queue.shutdown(queue))
    ) satisfies Effect.Effect<Queue.Dequeue<ChatEvent>, never, Scope.Scope>
  }
})

/** One instance, no Redis: the bus is this process's memory. */
export const layer = Layer.scoped(
  Bus,
  Effect.map(makeLocalHub, (hub) =>
    Bus.of({
      publish: (event) => Effect.sync(() => hub.publish(event)),
      subscribe: hub.subscribe
    }))
)
