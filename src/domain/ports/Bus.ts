import { Context, type Effect, type Queue, type Scope } from "effect"
import type { ChatEvent } from "../chat/Events.js"

/**
 * Fan-out of chat events to every instance. Only what was committed is
 * published (and ephemeral signals); a subscriber sees each event once, in
 * publish order.
 */
export class Bus extends Context.Tag("Ports/Bus")<Bus, {
  readonly publish: (event: ChatEvent) => Effect.Effect<void>
  /** Every event published from now on, until the scope closes. */
  readonly subscribe: Effect.Effect<Queue.Dequeue<ChatEvent>, never, Scope.Scope>
}>() {}
