import { Effect, Layer, Queue } from "effect"
import type { ChatEvent } from "../../domain/chat/Events.js"
import { Bus } from "../../domain/ports/Bus.js"

/**
 * One instance, no Redis: the bus is this process's memory. Each subscriber has its own unbounded
 * queue; a publish puts the event in every one of them at once, in publish order (no fiber hop: every
 * message sent goes through here).
 */
export const layer = Layer.scoped(
  Bus,
  Effect.gen(function*() {
    const subscribers = new Set<Queue.Queue<ChatEvent>>()
    yield* Effect.addFinalizer(() => Effect.forEach(subscribers, Queue.shutdown, { discard: true }))
    return Bus.of({
      publish: (event) =>
        Effect.sync(() => {
          for (const queue of subscribers) queue.unsafeOffer(event)
        }),
      subscribe: Effect.acquireRelease(
        Effect.tap(Queue.unbounded<ChatEvent>(), (queue) => Effect.sync(() => subscribers.add(queue))),
        (queue) => Effect.zipRight(Effect.sync(() => subscribers.delete(queue)), Queue.shutdown(queue))
      )
    })
  })
)
