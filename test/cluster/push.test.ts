import { expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Fs from "node:fs/promises"
import * as Path from "node:path"
import { pair, send } from "../support/Chat.js"
import { freshDatabase, freshRedis } from "../support/Database.js"
import { exitOf, type Instance, startInstance } from "../support/Instances.js"
import { fcmFake } from "../support/PushFakes.js"
import { TestServer } from "../support/TestApp.js"
import { tempDir } from "../support/TempDir.js"
import { eventually } from "../support/Waiting.js"
import { connect } from "../support/Ws.js"

// Several instances share one Postgres and one Redis; PGlite is one process's database.
const ready = process.env.DATABASE_URL && process.env.REDIS_URL
const why = "needs DATABASE_URL and REDIS_URL: instances share a Postgres and a Redis"

const on = <A, E, R>(instance: Instance, effect: Effect.Effect<A, E, R>) =>
  Effect.provideService(effect, TestServer, instance.server)

const pushEnv = Effect.gen(function*() {
  const fcm = yield* fcmFake
  const dir = yield* tempDir("push-cluster-")
  const account = Path.join(dir, "fcm.json")
  yield* Effect.promise(() => Fs.writeFile(account, fcm.serviceAccount))
  const env = {
    ...(yield* freshDatabase),
    ...(yield* freshRedis),
    PUSH_FCM_SERVICE_ACCOUNT_FILE: account,
    PUSH_FCM_ENDPOINT: fcm.endpoint,
    PUSH_DELAY: "200 millis",
    PUSH_POLL_INTERVAL: "50 millis"
  }
  return { fcm, env }
})

const registerFcm = (token: string, fcmToken: string) =>
  Effect.gen(function*() {
    const server = yield* TestServer
    const reply = yield* server.request("POST", "/devices", { token, body: { platform: "fcm", token: fcmToken } })
    expect(reply.status).toBe(201)
  })

it.live.skipIf(!ready)(`two instances: one push per message, whichever instance sends it (${why})`, () =>
  Effect.gen(function*() {
    const { env, fcm } = yield* pushEnv
    const [a, b] = yield* Effect.all([startInstance(env), startInstance(env)], { concurrency: 2 })
    const pairs = yield* Effect.forEach([1, 2, 3, 4, 5, 6, 7, 8], () => on(a, pair))
    yield* Effect.forEach(pairs, (p, i) => on(b, registerFcm(p.trainer.token, `cluster-${i}`)))
    // Sends on both instances; every trainer is offline.
    yield* Effect.forEach(pairs, (p, i) => on(i % 2 === 0 ? a : b, send(p.user.token, p.conversationId, `hello ${i}`)), {
      concurrency: "unbounded"
    })
    yield* eventually(() => fcm.received.length >= pairs.length, 10_000, "a push per conversation")
    yield* Effect.sleep("1 second")
    expect(fcm.received.map((r) => r.token).sort()).toEqual(pairs.map((_, i) => `cluster-${i}`).sort())
    expect(fcm.rejected).toEqual([])
  }).pipe(Effect.scoped), 60_000)

it.live.skipIf(!ready)(`an instance killed with a job claimed: another sends it after the lease, once (${why})`, () =>
  Effect.gen(function*() {
    const { env, fcm } = yield* pushEnv
    const leased = { ...env, PUSH_LEASE: "2 seconds" }
    const a = yield* startInstance(leased)
    const { conversationId, trainer, user } = yield* on(a, pair)
    yield* on(a, registerFcm(trainer.token, "survivor"))
    fcm.hold("survivor")
    expect((yield* on(a, send(user.token, conversationId, "do not lose me"))).status).toBe(201)
    // A claimed the job and is waiting for the provider: it dies there.
    yield* eventually(() => fcm.held.length === 1, 10_000, "instance A to claim and send")
    a.child.kill("SIGKILL")
    yield* exitOf(a.child)
    const killedAt = Date.now()
    yield* startInstance(leased)
    yield* eventually(() => fcm.received.length === 1, 15_000, "the push after the lease")
    expect(Date.now() - killedAt).toBeGreaterThan(1000)
    yield* Effect.sleep("1 second")
    expect(fcm.received.map((r) => r.token)).toEqual(["survivor"])
    expect(fcm.received[0]!.message.data).toMatchObject({ conversationId, seq: "1" })
  }).pipe(Effect.scoped), 60_000)

it.live.skipIf(!ready)(`a recipient with the conversation open on another instance gets no push (${why})`, () =>
  Effect.gen(function*() {
    const { env, fcm } = yield* pushEnv
    const [a, b] = yield* Effect.all([startInstance(env), startInstance(env)], { concurrency: 2 })
    const [open, away] = yield* Effect.all([on(a, pair), on(a, pair)])
    yield* on(a, registerFcm(open.trainer.token, "viewing-on-b"))
    yield* on(a, registerFcm(away.trainer.token, "connected-on-b"))
    // Both trainers are connected to B; one of them has the conversation open there.
    const viewer = yield* on(b, connect(open.trainer.token))
    expect((yield* viewer.request("joinConversation", { conversationId: open.conversationId })).event).toBe("ack")
    yield* on(b, connect(away.trainer.token))
    expect((yield* on(a, send(open.user.token, open.conversationId, "seen live"))).status).toBe(201)
    expect((yield* on(a, send(away.user.token, away.conversationId, "not on screen"))).status).toBe(201)
    yield* eventually(() => fcm.received.length >= 1, 10_000, "the push to the trainer not in the conversation")
    yield* Effect.sleep("1 second")
    expect(fcm.received.map((r) => r.token)).toEqual(["connected-on-b"])
  }).pipe(Effect.scoped), 60_000)
