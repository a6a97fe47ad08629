import { expect, it } from "@effect/vitest"
import { Effect, Logger, LogLevel } from "effect"
import * as Fs from "node:fs/promises"
import * as Path from "node:path"
import { pair, send } from "../support/Chat.js"
import { startInstance } from "../support/Instances.js"
import { fcmFake } from "../support/PushFakes.js"
import { ownPostgres } from "../support/Services.js"
import { TestServer } from "../support/TestApp.js"
import { tempDir } from "../support/TempDir.js"
import { eventually, pollUntil } from "../support/Waiting.js"

/** An instance on a Postgres of its own, pushing to a fake FCM quickly (short delay, coalescing and poll). */
const pushingInstance = (extra: Record<string, string>, logs?: Array<string>) =>
  Effect.gen(function*() {
    const pg = yield* ownPostgres
    const fcm = yield* fcmFake
    const dir = yield* tempDir("push-faults-")
    const account = Path.join(dir, "fcm.json")
    yield* Effect.promise(() => Fs.writeFile(account, fcm.serviceAccount))
    const instance = yield* startInstance({
      DATABASE_URL: pg.url,
      PUSH_FCM_SERVICE_ACCOUNT_FILE: account,
      PUSH_FCM_ENDPOINT: fcm.endpoint,
      PUSH_DELAY: "100 millis",
      PUSH_COALESCE: "100 millis",
      PUSH_POLL_INTERVAL: "50 millis",
      ...extra
    }, logs === undefined ? {} : { logs })
    const on = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.provideService(effect, TestServer, instance.server)
    return { pg, fcm, on }
  })

/**
 * Postgres away for a few seconds under an instance that pushes: the push runner says so once (it used to log a
 * warning at every poll, twenty a second with a 50 ms poll), and pushes come again once Postgres is back.
 */
it.live("Postgres down: one warning from the push runner, not one per poll; pushes resume after it is back", () =>
  Effect.gen(function*() {
    const logs: Array<string> = []
    const { fcm, on, pg } = yield* pushingInstance({}, logs)
    const { conversationId, trainer, user } = yield* on(pair)
    const device = yield* on(Effect.flatMap(TestServer, (server) =>
      server.request("POST", "/devices", { token: trainer.token, body: { platform: "fcm", token: "through-outage" } })))
    expect(device.status).toBe(201)
    expect((yield* on(send(user.token, conversationId, "before"))).status).toBe(201)
    yield* eventually(() => fcm.received.length === 1, 10_000, "the first push")

    yield* pg.stop
    yield* Effect.sleep("4 seconds")
    const warnings = logs.filter((line) => line.includes("Push sweep failed")).length
    yield* pg.start

    // Sends are answered again once the pool reconnects; the push follows.
    yield* pollUntil(
      Effect.map(on(send(user.token, conversationId, "after", "after-1")), (reply) => reply.status === 201 || undefined),
      20_000,
      "a send to succeed after the restart"
    )
    yield* eventually(() => fcm.received.length === 2, 20_000, "the push after the outage")
    expect(warnings).toBe(1)
    expect(fcm.received[1]!.message.data).toMatchObject({ conversationId, seq: "2" })
  }).pipe(Effect.scoped, Effect.provide(Logger.minimumLogLevel(LogLevel.Warning))), 120_000)

/**
 * Postgres goes away between the provider's 200 and the runner recording it: the runner records it once Postgres
 * is back (it used to leave the job claimed until its lease ran out, then push it again).
 */
it.live("Postgres down between a push and its record: recorded after the outage, not pushed twice", () =>
  Effect.gen(function*() {
    const { fcm, on, pg } = yield* pushingInstance({ PUSH_LEASE: "2 seconds" })
    const { conversationId, trainer, user } = yield* on(pair)
    const device = yield* on(Effect.flatMap(TestServer, (server) =>
      server.request("POST", "/devices", { token: trainer.token, body: { platform: "fcm", token: "once-only" } })))
    expect(device.status).toBe(201)
    fcm.hold("once-only")
    expect((yield* on(send(user.token, conversationId, "just one push"))).status).toBe(201)
    yield* eventually(() => fcm.held.length === 1, 10_000, "the push to reach the provider")
    yield* pg.stop
    fcm.release()
    yield* Effect.sleep("1 second")
    yield* pg.start
    // Back when the server reads its database again (no send: a new message would deserve a push of its own).
    yield* pollUntil(
      Effect.map(on(Effect.flatMap(TestServer, (server) => server.request("GET", "/chat/messages/unread/count", { token: trainer.token }))),
        (reply) => reply.status === 200 || undefined),
      20_000,
      "the database to answer again"
    )
    // Past the lease: a job left claimed would have been claimed and pushed again by now.
    yield* Effect.sleep("4 seconds")
    expect(fcm.received.map((r) => r.message.data.seq)).toEqual(["1"])
  }).pipe(Effect.scoped, Effect.provide(Logger.minimumLogLevel(LogLevel.Warning))), 120_000)
