import { Context, type Effect, type Scope } from "effect"
import type { ChatEvent } from "../chat/Events.js"

/**
 * Fan-out of chat events to every instance. Only what was committed is
 * published (and ephemeral signals); a subscriber sees each event once, in
 * publish order.
 */
export class Bus extends Context.Tag("Ports/Bus")<Bus, {
  readonly publish: (event: ChatEvent) => Effect.Effect<void>
  /**
   * Calls `onEvent` with every event published from now on, in order, until the scope closes. It runs
   * where the event is published or arrives, synchronously: it must be quick (hand slow work to a fiber);
   * what it throws is logged and the others still get the event.
   */
  readonly subscribe: (onEvent: (event: ChatEvent) => void) => Effect.Effect<void, never, Scope.Scope>
}>() {}
