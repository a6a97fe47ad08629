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
   *
   * `onGap` is called, the same way, when events from other instances may have been missed (the link to
   * them was lost and is back; events from then on arrive again): what a subscriber derived from events is
   * to be refreshed from the source of truth. A bus that cannot lose events (in memory) never calls it.
   */
  readonly subscribe: (
    onEvent: (event: ChatEvent) => void,
    onGap?: () => void
  ) => Effect.Effect<void, never, Scope.Scope>
}>() {}
