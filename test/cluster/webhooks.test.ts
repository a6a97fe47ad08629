import { expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { pair, send } from "../support/Chat.js"
import { freshDatabase, freshRedis } from "../support/Database.js"
import { exitOf, type Instance, startInstance } from "../support/Instances.js"
import { TestServer } from "../support/TestApp.js"
import { signInAdmin } from "../support/Users.js"
import { eventually } from "../support/Waiting.js"
import { webhookReceiver, type WebhookReceiver } from "../support/WebhookReceiver.js"

// Several instances share one Postgres and one Redis; PGlite is one process's database.
const ready = process.env.DATABASE_URL && process.env.REDIS_URL
const why = "needs DATABASE_URL and REDIS_URL: instances share a Postgres and a Redis"

const on = <A, E, R>(instance: Instance, effect: Effect.Effect<A, E, R>) =>
  Effect.provideService(effect, TestServer, instance.server)

const env = Effect.gen(function*() {
  return {
    ...(yield* freshDatabase),
    ...(yield* freshRedis),
    WEBHOOK_ALLOW_PRIVATE_URLS: "true",
    WEBHOOK_POLL_INTERVAL: "50 millis"
  }
})

const hook = (receiver: WebhookReceiver, path: string) =>
  Effect.gen(function*() {
    const server = yield* TestServer
    const boss = yield* signInAdmin
    const reply = yield* server.request("POST", "/admin/webhooks", {
      token: boss.token,
      body: { url: receiver.base + path, events: ["message.created"] }
    })
    expect(reply.status).toBe(201)
    receiver.secrets.set(path, reply.body.secret)
  })

it.live.skipIf(!ready)(`two instances: each event once, in order per conversation, whichever instance wrote it (${why})`, () =>
  Effect.gen(function*() {
    const receiver = yield* webhookReceiver
    const shared = yield* env
    const [a, b] = yield* Effect.all([startInstance(shared), startInstance(shared)], { concurrency: 2 })
    yield* on(a, hook(receiver, "/cluster"))
    const pairs = yield* Effect.forEach([1, 2, 3, 4, 5, 6], () => on(a, pair))
    // Each conversation's messages one after the other, alternating instances; conversations side by side.
    yield* Effect.forEach(pairs, (p) =>
      Effect.forEach([0, 1, 2, 3, 4], (i) =>
        on(i % 2 === 0 ? a : b, send(i % 2 === 0 ? p.user.token : p.trainer.token, p.conversationId, `m${i}`)).pipe(
          Effect.tap((r) => expect(r.status).toBe(201))
        )), { concurrency: "unbounded" })
    yield* eventually(() => receiver.received.length >= pairs.length * 5, 15_000, "every message's event")
    yield* Effect.sleep("1 second")
    expect(receiver.received.length).toBe(pairs.length * 5)
    expect(new Set(receiver.received.map((r) => r.id)).size).toBe(pairs.length * 5)
    for (const p of pairs) {
      const mine = receiver.received.filter((r) => r.data.conversationId === p.conversationId)
      expect(mine.map((r) => r.data.content)).toEqual(["m0", "m1", "m2", "m3", "m4"])
    }
    expect(receiver.rejected).toEqual([])
  }).pipe(Effect.scoped), 60_000)

it.live.skipIf(!ready)(`an instance killed mid-delivery: another delivers its line after the lease, in order (${why})`, () =>
  Effect.gen(function*() {
    const receiver = yield* webhookReceiver
    const shared = { ...(yield* env), WEBHOOK_LEASE: "2 seconds" }
    const a = yield* startInstance(shared)
    yield* on(a, hook(receiver, "/survivor"))
    // The first delivery is never answered: A waits on it, and dies there.
    receiver.script.set("/survivor", [0])
    const { conversationId, user } = yield* on(a, pair)
    for (const content of ["first", "second", "third"]) {
      expect((yield* on(a, send(user.token, conversationId, content))).status).toBe(201)
    }
    yield* eventually(() => receiver.hits.get("/survivor") === 1, 10_000, "instance A to post the first event")
    a.child.kill("SIGKILL")
    yield* exitOf(a.child)
    const killedAt = Date.now()
    yield* startInstance(shared)
    yield* eventually(() => receiver.received.length >= 3, 15_000, "the line delivered after the lease")
    expect(Date.now() - killedAt).toBeGreaterThan(1000)
    expect(receiver.received.map((r) => r.data.content)).toEqual(["first", "second", "third"])
    expect(receiver.rejected).toEqual([])
  }).pipe(Effect.scoped), 60_000)
