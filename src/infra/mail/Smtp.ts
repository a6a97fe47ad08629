import { Config, Effect, Layer, Option, Redacted } from "effect"
import nodemailer from "nodemailer"
import { Mailer } from "../../domain/ports/Mailer.js"

export const MailConfig = Config.all({
  /** `smtp://user:pass@host:587` or `smtps://…:465`; unset: no mail (development logs what it would send). */
  smtpUrl: Config.option(Config.redacted(Config.nonEmptyString("SMTP_URL"))),
  from: Config.string("MAIL_FROM").pipe(Config.withDefault("Trainer Chat <no-reply@localhost>"))
})

/** Mail over SMTP with nodemailer (one pooled transport); without `SMTP_URL`, mail goes to the log. */
export const layer = Layer.scoped(
  Mailer,
  Effect.gen(function*() {
    const config = yield* MailConfig
    const smtpUrl = config.smtpUrl
    if (Option.isNone(smtpUrl)) {
      return Mailer.of({
        configured: false,
        send: (mail) =>
          Effect.logInfo("SMTP_URL is not set: mail not sent, written here instead").pipe(
            Effect.annotateLogs({ to: mail.to, subject: mail.subject, text: mail.text })
          )
      })
    }
    const transport = yield* Effect.acquireRelease(
      Effect.sync(() => nodemailer.createTransport(Redacted.value(smtpUrl.value))),
      (t) => Effect.sync(() => t.close())
    )
    return Mailer.of({
      configured: true,
      send: (mail) =>
        Effect.tryPromise({
          try: () => transport.sendMail({ from: config.from, to: mail.to, subject: mail.subject, text: mail.text }),
          catch: (cause) => new Error(`SMTP: ${cause instanceof Error ? cause.message : String(cause)}`)
        }).pipe(Effect.asVoid, Effect.withSpan("Mailer.send"))
    })
  })
)
