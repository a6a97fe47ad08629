import { Context, type Effect, type Option } from "effect"
import type { ConversationId } from "../chat/Model.js"

/**
 * A version per conversation's message log, for caches of its pages: it changes after every
 * committed change to the log (a message, a read receipt), before anyone hears of that change.
 * A page cached under the version read before its query is current while the version stays.
 */
export class PageVersions extends Context.Tag("Ports/PageVersions")<PageVersions, {
  /** Called once a change has committed. Never fails: a bump that cannot be recorded now is retried. */
  readonly bump: (conversationId: ConversationId) => Effect.Effect<void>
  /** The same for several conversations at once (a batch of sends). */
  readonly bumpAll: (conversationIds: ReadonlyArray<ConversationId>) => Effect.Effect<void>
  /** The version now, or None when it cannot be known: then nothing cached may be served. */
  readonly current: (conversationId: ConversationId) => Effect.Effect<Option.Option<string>>
}>() {}
