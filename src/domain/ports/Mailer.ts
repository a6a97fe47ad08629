import { Context, type Effect } from "effect"

export interface Mail {
  readonly to: string
  readonly subject: string
  readonly text: string
}

/** Sends mail. `configured` false: there is no way to send (development writes the mail to the log instead). */
export class Mailer extends Context.Tag("Ports/Mailer")<Mailer, {
  readonly configured: boolean
  readonly send: (mail: Mail) => Effect.Effect<void, Error>
}>() {}
