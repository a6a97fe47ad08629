import { describe, expect, layer } from "@effect/vitest"
import { SqlClient } from "@effect/sql"
import { Context, Effect, Layer } from "effect"
import { EventTypes } from "../../src/domain/webhooks/Model.js"
import { pair, send } from "../support/Chat.js"
import * as TestApp from "../support/TestApp.js"
import { TestServer } from "../support/TestApp.js"
import { assign, createUser, register, signInAdmin } from "../support/Users.js"
import { eventually, pollUntil } from "../support/Waiting.js"
import { type Received, webhookReceiver, type WebhookReceiver } from "../support/WebhookReceiver.js"

class Receiver extends Context.Tag("Test/WebhookReceiver")<Receiver, WebhookReceiver>() {}

const request = (method: string, path: string, options: TestApp.RequestOptions = {}) =>
  Effect.flatMap(TestServer, (server) => server.request(method, path, options))

const allEvents = EventTypes

/** Registers a webhook to the receiver at `path`, and gives the receiver its secret. */
const hook = (path: string, events: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const receiver = yield* Receiver
    const boss = yield* signInAdmin
    const reply = yield* request("POST", "/admin/webhooks", {
      token: boss.token,
      body: { url: receiver.base + path, events, description: `test ${path}` }
    })
    expect(reply.status, JSON.stringify(reply.body)).toBe(201)
    receiver.secrets.set(path, reply.body.secret)
    return reply.body as { readonly id: string; readonly secret: string }
  })

const at = (receiver: WebhookReceiver, path: string) => receiver.received.filter((r) => r.path === path)

const waitFor = (path: string, what: string, match: (r: Received) => boolean, count = 1) =>
  Effect.gen(function*() {
    const receiver = yield* Receiver
    yield* eventually(() => at(receiver, path).filter(match).length >= count, 10_000, what)
    return at(receiver, path).filter(match)
  })

const fast = { WEBHOOK_POLL_INTERVAL: "50 millis", WEBHOOK_DELIVERIES_KEPT: "8", WEBHOOK_PRUNE_INTERVAL: "200 millis" }

describe("webhooks", () => {
  layer(
    TestApp.layer({ ...fast, WEBHOOK_ALLOW_PRIVATE_URLS: "true" }).pipe(Layer.provideMerge(Layer.scoped(Receiver, webhookReceiver))),
    { excludeTestServices: true, timeout: 60_000 }
  )("delivery", (it) => {
    it.effect("admins register, list, read and remove webhooks; the secret is shown once; others get 403", () =>
      Effect.gen(function*() {
        const boss = yield* signInAdmin
        const user = yield* createUser("user")
        const created = yield* hook("/crud", ["user.created"])
        expect(created.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/)
        const listed = yield* request("GET", "/admin/webhooks", { token: boss.token })
        expect(listed.status).toBe(200)
        expect(listed.body.map((w: any) => w.id)).toContain(created.id)
        const one = yield* request("GET", `/admin/webhooks/${created.id}`, { token: boss.token })
        expect(one.body).toMatchObject({ id: created.id, events: ["user.created"], description: "test /crud" })
        expect(JSON.stringify([listed.body, one.body])).not.toContain(created.secret.slice(6))
        for (
          const [method, path] of [
            ["GET", "/admin/webhooks"],
            ["GET", `/admin/webhooks/${created.id}`],
            ["GET", `/admin/webhooks/${created.id}/deliveries`],
            ["DELETE", `/admin/webhooks/${created.id}`]
          ] as const
        ) expect((yield* request(method, path, { token: user.token })).status, `${method} ${path}`).toBe(403)
        expect(
          (yield* request("POST", "/admin/webhooks", {
            token: user.token,
            body: { url: "https://hooks.example/x", events: ["user.created"] }
          })).status
        ).toBe(403)
        expect((yield* request("DELETE", `/admin/webhooks/${created.id}`, { token: boss.token })).status).toBe(204)
        expect((yield* request("DELETE", `/admin/webhooks/${created.id}`, { token: boss.token })).status).toBe(404)
        expect((yield* request("GET", `/admin/webhooks/${created.id}`, { token: boss.token })).status).toBe(404)
        expect((yield* request("GET", `/admin/webhooks/${created.id}/deliveries`, { token: boss.token })).status).toBe(404)
        const audit = yield* request("GET", "/chat/admin/audit?limit=100", { token: boss.token })
        const actions = audit.body.items.filter((e: any) => e.targetId === created.id).map((e: any) => e.action)
        expect(actions.sort()).toEqual(["webhook.create", "webhook.delete"])
      }))

    it.effect("refuses malformed webhooks with 400 and stores nothing", () =>
      Effect.gen(function*() {
        const boss = yield* signInAdmin
        const before = (yield* request("GET", "/admin/webhooks", { token: boss.token })).body.length
        const bad: ReadonlyArray<unknown> = [
          {},
          { url: "https://hooks.example/x" },
          { url: "https://hooks.example/x", events: [] },
          { url: "https://hooks.example/x", events: ["message.deleted"] },
          { url: "https://hooks.example/x", events: ["user.created", "user.created"] },
          { url: "ftp://hooks.example/x", events: ["user.created"] },
          { url: "not a url", events: ["user.created"] },
          { url: `https://hooks.example/${"x".repeat(3000)}`, events: ["user.created"] },
          { url: "https://hooks.example/x", events: ["user.created"], secret: "mine" },
          { url: "https://hooks.example/x", events: ["user.created"], description: "x".repeat(501) }
        ]
        for (const body of bad) {
          const reply = yield* request("POST", "/admin/webhooks", { token: boss.token, body })
          expect(reply.status, JSON.stringify(body)).toBe(400)
        }
        expect((yield* request("GET", "/admin/webhooks/not-a-uuid", { token: boss.token })).status).toBe(400)
        expect((yield* request("GET", "/admin/webhooks", { token: boss.token })).body.length).toBe(before)
      }))

    it.effect("every event type reaches a webhook, signed, with its data, in order per conversation", () =>
      Effect.gen(function*() {
        const path = "/all"
        yield* hook(path, allEvents)
        const boss = yield* signInAdmin
        const { conversationId, trainer, user } = yield* pair
        const sent = yield* send(user.token, conversationId, "hello trainer")
        expect(sent.status).toBe(201)
        expect((yield* request("PUT", `/chat/conversations/${conversationId}/read`, { token: trainer.token, body: {} })).status)
          .toBe(200)
        // A new trainer: the old conversation is archived; the new one opened, then closed by an admin.
        const other = yield* createUser("trainer")
        yield* assign(user.id, other.id)
        const opened = yield* request("POST", "/chat/conversations", { token: user.token, body: { participantId: other.id } })
        expect(opened.status).toBe(201)
        const closed = yield* request("PUT", `/chat/admin/conversations/${opened.body.id}/close`, {
          token: boss.token,
          body: { reason: "done" }
        })
        expect(closed.status).toBe(200)
        expect((yield* request("PATCH", `/users/${user.id}`, { token: boss.token, body: { isActive: false } })).status).toBe(200)

        const [created] = yield* waitFor(path, "user.created", (r) => r.type === "user.created" && r.data.id === user.id)
        expect(created!.data).toMatchObject({ id: user.id, email: user.email, role: "user", isActive: true })
        expect(JSON.stringify(created!.data)).not.toMatch(/password|argon/i)
        const [deactivated] = yield* waitFor(path, "user.deactivated", (r) => r.type === "user.deactivated" && r.data.id === user.id)
        expect(deactivated!.data).toMatchObject({ id: user.id, isActive: false })
        const [closedEvent] = yield* waitFor(path, "conversation.closed", (r) => r.type === "conversation.closed")
        expect(closedEvent!.data).toMatchObject({ id: opened.body.id, status: "closed", closedReason: "done" })

        const receiver = yield* Receiver
        const first = yield* waitFor(path, "the first conversation's events", (r) =>
          (r.data.conversationId ?? r.data.id) === conversationId, 4)
        expect(first.map((r) => r.type)).toEqual([
          "conversation.created",
          "message.created",
          "message.read",
          "conversation.archived"
        ])
        expect(first[0]!.data).toMatchObject({ id: conversationId, userId: user.id, trainerId: trainer.id, status: "active" })
        expect(first[1]!.data).toMatchObject({
          conversationId,
          senderId: user.id,
          receiverId: trainer.id,
          content: "hello trainer",
          seq: sent.body.seq,
          id: sent.body.id
        })
        expect(first[2]!.data).toMatchObject({ conversationId, readerId: trainer.id, count: 1, seqs: [sent.body.seq] })
        expect(first[3]!.data).toMatchObject({ id: conversationId, status: "archived" })
        for (const event of first) {
          expect(event.headers["webhook-id"]).toBe(event.id)
          expect(Math.abs(Number(event.headers["webhook-timestamp"]) - Date.now() / 1000)).toBeLessThan(60)
          expect(Date.parse(event.createdAt)).toBeGreaterThan(Date.now() - 60_000)
        }
        expect(new Set(at(receiver, path).map((r) => r.id)).size).toBe(at(receiver, path).length)
        expect(receiver.rejected).toEqual([])
      }))

    it.effect("a receiver answering 500 gets each event again, once accepted, in order; the log shows every attempt", () =>
      Effect.gen(function*() {
        const path = "/flaky"
        const receiver = yield* Receiver
        const { id } = yield* hook(path, ["message.created"])
        receiver.script.set(path, [500, 503])
        const { conversationId, trainer, user } = yield* pair
        const contents = ["one", "two", "three", "four"]
        for (const [i, content] of contents.entries()) {
          expect((yield* send(i % 2 === 0 ? user.token : trainer.token, conversationId, content)).status).toBe(201)
        }
        const got = yield* waitFor(path, "four messages", () => true, 4)
        // Nothing else goes there: the webhook asked for message.created only.
        expect(got.map((r) => r.type)).toEqual(["message.created", "message.created", "message.created", "message.created"])
        expect(got.map((r) => r.data.content)).toEqual(contents)
        expect(got.map((r) => r.data.seq)).toEqual([...got.map((r) => r.data.seq)].sort((a, b) => a - b))
        expect(new Set(got.map((r) => r.id)).size).toBe(4)
        expect(receiver.hits.get(path)).toBe(6)
        const boss = yield* signInAdmin
        const log = yield* pollUntil(
          Effect.map(request("GET", `/admin/webhooks/${id}/deliveries`, { token: boss.token }), (r) =>
            r.body.total === 6 ? r.body : undefined),
          5000,
          "six attempts logged"
        )
        const oldest = [...log.items].reverse()
        expect(oldest.slice(0, 2).map((d: any) => [d.status, d.delivered, d.error, d.attempt])).toEqual([
          [500, false, "HTTP 500", 1],
          [503, false, "HTTP 503", 2]
        ])
        expect(oldest.slice(2).map((d: any) => [d.status, d.delivered, d.error])).toEqual(
          Array.from({ length: 4 }, () => [204, true, null])
        )
        expect(oldest[0].eventId).toBe(oldest[2].eventId)
        expect(oldest[2].attempt).toBe(3)
        expect(oldest[0].latencyMs).toBeGreaterThanOrEqual(0)
      }))

    it.effect("a redirect is not followed: it is a failed attempt, retried at the URL given", () =>
      Effect.gen(function*() {
        const path = "/moved"
        const receiver = yield* Receiver
        const { id } = yield* hook(path, ["user.created"])
        receiver.script.set(path, [302])
        const fresh = yield* register("redirected")
        yield* waitFor(path, "the user's creation", (r) => r.data.id === fresh.id)
        expect(receiver.hits.get("/redirected")).toBeUndefined()
        const boss = yield* signInAdmin
        const log = (yield* request("GET", `/admin/webhooks/${id}/deliveries`, { token: boss.token })).body
        expect(log.items.map((d: any) => d.error)).toContain("redirect not followed (HTTP 302)")
      }))

    it.effect("what is rolled back sends nothing: a refused registration, a send to a closed conversation", () =>
      Effect.gen(function*() {
        const path = "/rollback"
        yield* hook(path, ["user.created", "message.created"])
        const first = yield* register("once")
        const again = yield* request("POST", "/auth/register", {
          body: { email: first.email, password: "password-123", firstName: "Again", lastName: "x" }
        })
        expect(again.status).toBe(409)
        const boss = yield* signInAdmin
        const { conversationId, user } = yield* pair
        yield* request("PUT", `/chat/admin/conversations/${conversationId}/close`, { token: boss.token, body: {} })
        expect((yield* send(user.token, conversationId, "too late")).status).not.toBe(201)
        // A later event of each kind has arrived: the refused ones would have been written before it.
        const later = yield* register("later")
        yield* waitFor(path, "the later user", (r) => r.data.id === later.id)
        const receiver = yield* Receiver
        expect(at(receiver, path).filter((r) => r.data.email === first.email).length).toBe(1)
        expect(at(receiver, path).filter((r) => r.type === "message.created" && r.data.conversationId === conversationId))
          .toEqual([expect.objectContaining({ data: expect.objectContaining({ type: "system" }) })])
      }))

    it.effect("the outbox functions run with sequential scans on and JIT off, whatever the append set", () =>
      Effect.gen(function*() {
        // The append turns sequential scans off for itself (0005-0007), and the triggers it fires inherited
        // that: a scan of the small webhooks table was then costed at 1e10, above jit_above_cost, and every
        // append spent 20-80 ms compiling it (bench:ws found it: Postgres CPU per message tripled).
        const sql = yield* SqlClient.SqlClient
        const rows = yield* sql<{ proname: string; proconfig: ReadonlyArray<string> | null }>`
          SELECT p.proname, p.proconfig FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
          WHERE t.tgname LIKE 'webhook_%' AND NOT t.tgisinternal
          UNION SELECT proname, proconfig FROM pg_proc WHERE proname = 'webhook_emit'`
        expect(rows.length).toBe(5)
        for (const row of rows) {
          expect(row.proconfig ?? [], row.proname).toEqual(expect.arrayContaining(["enable_seqscan=on", "jit=off"]))
        }
      }))

    it.effect("the deliveries log keeps each webhook's latest WEBHOOK_DELIVERIES_KEPT attempts", () =>
      Effect.gen(function*() {
        const path = "/kept"
        const { id } = yield* hook(path, ["user.created"])
        const users = yield* Effect.forEach(Array.from({ length: 10 }, (_, i) => i), () => register("kept"))
        yield* waitFor(path, "ten users", (r) => users.some((u) => u.id === r.data.id), 10)
        const boss = yield* signInAdmin
        const log = yield* pollUntil(
          Effect.map(request("GET", `/admin/webhooks/${id}/deliveries`, { token: boss.token }), (r) =>
            r.body.total === 8 ? r.body : undefined),
          5000,
          "the log trimmed to eight"
        )
        // The latest eight: the last eight users' creations, newest first.
        expect(log.items.every((d: any) => d.delivered)).toBe(true)
        const receiver = yield* Receiver
        expect(log.items.map((d: any) => d.eventId)).toEqual(at(receiver, path).slice(-8).map((r) => r.id).reverse())
      }))

    it.effect("a removed webhook gets nothing more, and its pending events go with it", () =>
      Effect.gen(function*() {
        const path = "/removed"
        const receiver = yield* Receiver
        const boss = yield* signInAdmin
        const { id } = yield* hook(path, ["user.created"])
        // Answers 500 until it is removed: the event stays pending.
        receiver.script.set(path, Array.from({ length: 100 }, () => 500))
        yield* register("pending")
        yield* eventually(() => (receiver.hits.get(path) ?? 0) >= 1, 5000, "a first attempt")
        expect((yield* request("DELETE", `/admin/webhooks/${id}`, { token: boss.token })).status).toBe(204)
        const sql = yield* SqlClient.SqlClient
        const rows = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM webhook_jobs WHERE webhook_id = ${id}`
        expect(rows[0]!.n).toBe(0)
        const hits = receiver.hits.get(path)
        yield* register("after")
        yield* Effect.sleep("1500 millis")
        expect(receiver.hits.get(path)).toBe(hits)
      }))
  })

  layer(
    TestApp.layer({ ...fast, WEBHOOK_RETRY_FOR: "1500 millis" }),
    { excludeTestServices: true, timeout: 60_000 }
  )("without WEBHOOK_ALLOW_PRIVATE_URLS", (it) => {
    it.effect("loopback, private and link-local URLs are refused with 400", () =>
      Effect.gen(function*() {
        const boss = yield* signInAdmin
        for (
          const url of [
            "http://127.0.0.1:8080/hook",
            "http://localhost/hook",
            "https://api.localhost/hook",
            "http://10.1.2.3/hook",
            "http://192.168.0.10/hook",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/hook",
            "http://[fd00::1]/hook",
            "http://[::ffff:127.0.0.1]/hook",
            "http://0.0.0.0/hook"
          ]
        ) {
          const reply = yield* request("POST", "/admin/webhooks", { token: boss.token, body: { url, events: ["user.created"] } })
          expect(reply.status, url).toBe(400)
          expect(reply.body._tag, url).toBe("PrivateWebhookUrl")
        }
        expect((yield* request("GET", "/admin/webhooks", { token: boss.token })).body).toEqual([])
      }))

    it.effect("an event not delivered within WEBHOOK_RETRY_FOR is given up, and its line goes on", () =>
      Effect.gen(function*() {
        const boss = yield* signInAdmin
        const created = yield* request("POST", "/admin/webhooks", {
          token: boss.token,
          body: { url: "http://hooks.invalid/x", events: ["user.created", "user.deactivated"] }
        })
        expect(created.status).toBe(201)
        const someone = yield* register("unreachable")
        yield* request("PATCH", `/users/${someone.id}`, { token: boss.token, body: { isActive: false } })
        const sql = yield* SqlClient.SqlClient
        // Both are given up in turn: the first after its window, then the second (it waited behind it).
        yield* pollUntil(
          Effect.map(
            sql<{ type: string; state: string }>`SELECT type, state FROM webhook_jobs WHERE order_key = ${someone.id} ORDER BY id`,
            (rows) => rows.length === 2 && rows.every((r) => r.state === "dead") ? rows : undefined
          ),
          15_000,
          "both events given up"
        )
        const log = (yield* request("GET", `/admin/webhooks/${created.body.id}/deliveries?limit=100`, { token: boss.token })).body
        expect(log.items.length).toBeGreaterThanOrEqual(2)
        expect(new Set(log.items.map((d: any) => d.error))).toEqual(new Set(["host not found"]))
        expect(log.items.every((d: any) => d.status === null && d.delivered === false)).toBe(true)
      }))
  })
})
