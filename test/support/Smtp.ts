import { Effect, type Scope } from "effect"
import type { AddressInfo } from "node:net"
import { SMTPServer } from "smtp-server"
import { makeWaiting } from "./Waiting.js"

export interface ReceivedMail {
  readonly to: ReadonlyArray<string>
  readonly from: string
  /** The raw message with quoted-printable undone (enough to read a link out of it). */
  readonly text: string
}

export interface SmtpFake {
  readonly url: string
  readonly received: Array<ReceivedMail>
  /** The next mail to `to` (after those already taken), or a test failure after the timeout. */
  readonly next: (to: string, timeoutMs?: number) => Effect.Effect<ReceivedMail, Error>
}

const unquote = (raw: string) =>
  raw.replace(/=\r?\n/g, "").replace(/=([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)))

/** An SMTP server on loopback (plain, no auth) that keeps every mail it is given, answering each after `delayMs`. */
export const smtpFake = (delayMs = 0): Effect.Effect<SmtpFake, never, Scope.Scope> => Effect.gen(function*() {
  const received: Array<ReceivedMail> = []
  const { waitFor, wake } = makeWaiting(received, { items: "mails", one: "a mail" })
  const taken = new Set<number>()
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS", "AUTH"],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Array<Buffer> = []
      stream.on("data", (c: Buffer) => chunks.push(c))
      stream.on("end", () => {
        received.push({
          to: session.envelope.rcptTo.map((r) => r.address),
          from: session.envelope.mailFrom === false ? "" : session.envelope.mailFrom.address,
          text: unquote(Buffer.concat(chunks).toString("utf8"))
        })
        wake()
        setTimeout(() => callback(), delayMs)
      })
    }
  })
  yield* Effect.async<void>((resume) => {
    server.listen(0, "127.0.0.1", () => resume(Effect.void))
  })
  yield* Effect.addFinalizer(() => Effect.async<void>((resume) => server.close(() => resume(Effect.void))))
  const { port } = (server as unknown as { server: { address: () => AddressInfo } }).server.address()
  return {
    url: `smtp://127.0.0.1:${port}`,
    received,
    next: (to, timeoutMs = 5000) =>
      waitFor(() => {
        const i = received.findIndex((m, i) => !taken.has(i) && m.to.includes(to))
        if (i < 0) return undefined
        taken.add(i)
        return received[i]!
      }, timeoutMs, `a mail to ${to}`)
  }
})
