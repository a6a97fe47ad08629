import { Effect, Layer, PubSub } from "effect"
import type { ChatEvent } from "../../domain/chat/Events.js"
import { Bus } from "../../domain/ports/Bus.js"

/** One instance, no Redis: the bus is a PubSub in this process. */
export const layer = Layer.scoped(
  Bus,
  Effect.gen(function*() {
    const hub = yield* Effect.acquireRelease(PubSub.unbounded<ChatEvent>(), PubSub.shutdown)
    return Bus.of({
      publish: (event) => Effect.asVoid(PubSub.publish(hub, event)),
      subscribe: PubSub.subscribe(hub)
    })
  })
)
