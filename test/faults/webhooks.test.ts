import { expect, it } from "@effect/vitest"
import { Effect, Logger, LogLevel } from "effect"
import { pair, send } from "../support/Chat.js"
import { startInstance } from "../support/Instances.js"
import { ownPostgres } from "../support/Services.js"
import { TestServer } from "../support/TestApp.js"
import { signInAdmin } from "../support/Users.js"
import { eventually, pollUntil } from "../support/Waiting.js"
import { webhookReceiver } from "../support/WebhookReceiver.js"

/**
 * Postgres away for a few seconds under an instance with a webhook: its runner says so once, not at every poll,
 * and the events written before and after the outage are delivered once it is back, in order, each once.
 */
it.live("Postgres down: one warning from the webhook runner; events delivered in order after it is back", () =>
  Effect.gen(function*() {
    const pg = yield* ownPostgres
    const receiver = yield* webhookReceiver
    const logs: Array<string> = []
    const instance = yield* startInstance({
      DATABASE_URL: pg.url,
      WEBHOOK_ALLOW_PRIVATE_URLS: "true",
      WEBHOOK_POLL_INTERVAL: "50 millis"
    }, { logs })
    const on = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.provideService(effect, TestServer, instance.server)
    const boss = yield* on(signInAdmin)
    const created = yield* on(Effect.flatMap(TestServer, (server) =>
      server.request("POST", "/admin/webhooks", {
        token: boss.token,
        body: { url: `${receiver.base}/outage`, events: ["message.created"] }
      })))
    expect(created.status).toBe(201)
    receiver.secrets.set("/outage", created.body.secret)
    const { conversationId, user } = yield* on(pair)
    expect((yield* on(send(user.token, conversationId, "before"))).status).toBe(201)
    yield* eventually(() => receiver.received.length === 1, 10_000, "the first event")

    yield* pg.stop
    yield* Effect.sleep("4 seconds")
    const warnings = logs.filter((line) => line.includes("Webhook sweep failed")).length
    yield* pg.start

    yield* pollUntil(
      Effect.map(on(send(user.token, conversationId, "after", "after-1")), (reply) => reply.status === 201 || undefined),
      20_000,
      "a send to succeed after the restart"
    )
    yield* eventually(() => receiver.received.length === 2, 20_000, "the event after the outage")
    expect(warnings).toBe(1)
    expect(receiver.received.map((r) => r.data.content)).toEqual(["before", "after"])
  }).pipe(Effect.scoped, Effect.provide(Logger.minimumLogLevel(LogLevel.Warning))), 120_000)
