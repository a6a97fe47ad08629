import type { WsConfig } from "../Config.js"
import type { FanOut } from "../FanOut.js"
import type { Sessions } from "../Sessions.js"
import type { Work } from "../Work.js"

/** What every client event's handler works with. */
export interface EventContext {
  readonly config: WsConfig
  readonly sessions: Sessions
  readonly work: Work
  readonly fanOut: FanOut
}
