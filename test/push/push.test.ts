import { describe, expect, layer } from "@effect/vitest"
import { SqlClient } from "@effect/sql"
import { Context, Effect, Layer } from "effect"
import * as Fs from "node:fs/promises"
import * as Path from "node:path"
import { isPrivateAddress } from "../../src/domain/push/Endpoints.js"
import { safeLookup } from "../../src/infra/push/SafeLookup.js"
import { pair, send } from "../support/Chat.js"
import { apnsFake, type ApnsFake, fcmFake, type FcmFake, webPushFake, type WebPushFake } from "../support/PushFakes.js"
import * as TestApp from "../support/TestApp.js"
import { TestServer } from "../support/TestApp.js"
import { tempDir } from "../support/TempDir.js"
import { createUser, signInAdmin } from "../support/Users.js"
import { eventually, pollUntil } from "../support/Waiting.js"
import { connect } from "../support/Ws.js"

class Fakes extends Context.Tag("Test/PushFakes")<Fakes, {
  readonly web: WebPushFake
  readonly fcm: FcmFake
  readonly apns: ApnsFake
}>() {}

const FakesLive = Layer.scoped(Fakes, Effect.all({ web: webPushFake, fcm: fcmFake, apns: apnsFake }))

// Short delays so that a test sees a push within a second; the windows themselves are what is tested.
const timing = {
  PUSH_DELAY: "400 millis",
  PUSH_COALESCE: "2 seconds",
  PUSH_POLL_INTERVAL: "50 millis",
  // The fake push service listens on loopback.
  PUSH_ALLOW_PRIVATE_ENDPOINTS: "true"
}

const appWith = (extra: Record<string, string>) =>
  Layer.unwrapScoped(Effect.gen(function*() {
    const { apns, fcm, web } = yield* Fakes
    const dir = yield* tempDir("push-keys-")
    const account = Path.join(dir, "fcm.json")
    const key = Path.join(dir, "apns.p8")
    yield* Effect.promise(() => Promise.all([Fs.writeFile(account, fcm.serviceAccount), Fs.writeFile(key, apns.key)]))
    return TestApp.layer({
      ...timing,
      PUSH_VAPID_PUBLIC_KEY: web.vapid.publicKey,
      PUSH_VAPID_PRIVATE_KEY: web.vapid.privateKey,
      PUSH_VAPID_SUBJECT: web.vapid.subject,
      PUSH_FCM_SERVICE_ACCOUNT_FILE: account,
      PUSH_FCM_ENDPOINT: fcm.endpoint,
      PUSH_APNS_KEY_FILE: key,
      PUSH_APNS_KEY_ID: apns.keyId,
      PUSH_APNS_TEAM_ID: apns.teamId,
      PUSH_APNS_TOPIC: apns.topic,
      PUSH_APNS_ENDPOINT: apns.endpoint,
      PUSH_MAX_ATTEMPTS: "3",
      ...extra
    })
  })).pipe(Layer.provideMerge(FakesLive))

const request = (method: string, path: string, options: TestApp.RequestOptions = {}) =>
  Effect.flatMap(TestServer, (server) => server.request(method, path, options))

const registerWebPush = (token: string) =>
  Effect.gen(function*() {
    const { web } = yield* Fakes
    const subscription = web.subscribe()
    const reply = yield* request("POST", "/devices", { token, body: { platform: "webpush", subscription } })
    expect(reply.status).toBe(201)
    return { id: reply.body.id as string, subscription: subscription.endpoint.split("/").pop()! }
  })

const registerFcm = (token: string, fcmToken = `fcm-${Math.random().toString(36).slice(2)}`) =>
  Effect.gen(function*() {
    const reply = yield* request("POST", "/devices", { token, body: { platform: "fcm", token: fcmToken, appVersion: "2.1.0" } })
    expect(reply.status).toBe(201)
    return { id: reply.body.id as string, token: fcmToken }
  })

const to = (web: WebPushFake, subscription: string) => web.received.filter((r) => r.subscription === subscription)

describe("push notifications", () => {
  layer(appWith({}), { excludeTestServices: true, timeout: 60_000 })("devices and settings", (it) => {
    it.effect("registers, lists, moves and removes devices; the token is never shown", () =>
      Effect.gen(function*() {
        const [alice, bob] = yield* Effect.all([createUser("user"), createUser("user")])
        const first = yield* request("POST", "/devices", {
          token: alice.token,
          body: { platform: "fcm", token: "tok-alice-1", appVersion: "1.0.0", locale: "de-DE" }
        })
        expect(first.status).toBe(201)
        expect(first.body).toMatchObject({ platform: "fcm", appVersion: "1.0.0", locale: "de-DE" })
        expect(JSON.stringify(first.body)).not.toContain("tok-alice-1")
        const again = yield* request("POST", "/devices", { token: alice.token, body: { platform: "fcm", token: "tok-alice-1" } })
        expect(again.status).toBe(200)
        expect(again.body.id).toBe(first.body.id)
        // The phone changed hands (signed in as someone else): the token follows the new user.
        const moved = yield* request("POST", "/devices", { token: bob.token, body: { platform: "fcm", token: "tok-alice-1" } })
        expect(moved.status).toBe(200)
        expect((yield* request("GET", "/devices", { token: alice.token })).body).toEqual([])
        expect((yield* request("GET", "/devices", { token: bob.token })).body.map((d: any) => d.id)).toEqual([first.body.id])
        expect((yield* request("DELETE", `/devices/${first.body.id}`, { token: alice.token })).status).toBe(404)
        expect((yield* request("DELETE", `/devices/${first.body.id}`, { token: bob.token })).status).toBe(204)
        expect((yield* request("GET", "/devices", { token: bob.token })).body).toEqual([])
      }))

    it.effect("refuses malformed devices with 400 and changes nothing", () =>
      Effect.gen(function*() {
        const user = yield* createUser("user")
        const { web } = yield* Fakes
        const bad: ReadonlyArray<unknown> = [
          { platform: "fcm" },
          { platform: "webpush", token: "x" },
          { platform: "webpush", subscription: { endpoint: "http://push.example/1", keys: web.subscribe().keys } },
          { platform: "webpush", subscription: { endpoint: "https://push.example/1", keys: { p256dh: "!", auth: "?" } } },
          { platform: "gcm", token: "x" },
          { platform: "apns", token: "x", extra: 1 },
          { platform: "apns", token: "" },
          { platform: "apns", token: "x".repeat(5000) }
        ]
        for (const body of bad) {
          const reply = yield* request("POST", "/devices", { token: user.token, body })
          expect(reply.status, JSON.stringify(body)).toBe(400)
        }
        expect((yield* request("GET", "/devices", { token: user.token })).body).toEqual([])
        expect((yield* request("POST", "/devices", { body: { platform: "apns", token: "x" } })).status).toBe(401)
      }))

    it.effect("keeps at most PUSH_MAX_DEVICES_PER_USER devices, dropping the least recently registered", () =>
      Effect.gen(function*() {
        const user = yield* createUser("user")
        for (let i = 0; i < 12; i++) yield* registerFcm(user.token, `many-${i}`)
        const devices = (yield* request("GET", "/devices", { token: user.token })).body
        expect(devices).toHaveLength(10)
      }))

    it.effect("/ready names the push providers that are on", () =>
      Effect.gen(function*() {
        const ready = yield* request("GET", "/ready")
        expect(ready.body.push).toEqual(["apns", "fcm", "webpush"])
      }))

    it.effect("serves the VAPID public key", () =>
      Effect.gen(function*() {
        const { web } = yield* Fakes
        const user = yield* createUser("user")
        const reply = yield* request("GET", "/devices/webpush-key", { token: user.token })
        expect(reply.status).toBe(200)
        expect(reply.body).toEqual({ publicKey: web.vapid.publicKey })
      }))

    it.effect("notification settings: defaults, partial updates, validation", () =>
      Effect.gen(function*() {
        const user = yield* createUser("user")
        const path = "/users/me/notifications"
        expect((yield* request("GET", path, { token: user.token })).body).toEqual({
          preview: false,
          quietHours: null,
          mutedConversations: []
        })
        const quietHours = { start: "22:00", end: "07:00", timeZone: "Europe/Berlin" }
        const put = yield* request("PUT", path, { token: user.token, body: { preview: true, quietHours } })
        expect(put.status).toBe(200)
        expect(put.body).toEqual({ preview: true, quietHours, mutedConversations: [] })
        for (
          const body of [
            { quietHours: { start: "25:00", end: "07:00", timeZone: "Europe/Berlin" } },
            { quietHours: { start: "22:00", end: "07:00", timeZone: "Mars/Olympus" } },
            { mutedConversations: ["not-a-uuid"] },
            { preview: "yes" },
            { sound: true }
          ]
        ) {
          expect((yield* request("PUT", path, { token: user.token, body })).status, JSON.stringify(body)).toBe(400)
        }
        const cleared = yield* request("PUT", path, { token: user.token, body: { quietHours: null } })
        expect(cleared.body).toEqual({ preview: true, quietHours: null, mutedConversations: [] })
      }))
  })

  layer(appWith({}), { excludeTestServices: true, timeout: 60_000 })("when a push is sent", (it) => {
    it.effect("an offline recipient gets exactly one push, encrypted for their browser, saying who wrote", () =>
      Effect.gen(function*() {
        const { web } = yield* Fakes
        const { conversationId, trainer, user } = yield* pair
        const device = yield* registerWebPush(trainer.token)
        expect((yield* send(user.token, conversationId, "how many reps?")).status).toBe(201)
        yield* eventually(() => to(web, device.subscription).length === 1, 5000, "one push")
        yield* Effect.sleep("1 second")
        const pushes = to(web, device.subscription)
        expect(pushes).toHaveLength(1)
        expect(pushes[0]!.payload).toMatchObject({
          title: "Test",
          body: "New message from Test",
          badge: 1,
          silent: false,
          data: { type: "newMessage", conversationId, seq: 1, count: 1 }
        })
        // No preview by default: the content is not in the push.
        expect(JSON.stringify(pushes[0]!.payload)).not.toContain("reps")
        expect(pushes[0]!.urgency).toBe("high")
        expect(web.rejected).toEqual([])
      }))

    it.effect("a recipient with the conversation open on a device gets none; one online elsewhere gets one", () =>
      Effect.gen(function*() {
        const { web } = yield* Fakes
        const { conversationId, trainer, user } = yield* pair
        const device = yield* registerWebPush(trainer.token)
        const socket = yield* connect(trainer.token)
        expect((yield* socket.request("joinConversation", { conversationId })).event).toBe("ack")
        expect((yield* send(user.token, conversationId, "are you there?")).status).toBe(201)
        yield* Effect.sleep("1500 millis")
        expect(to(web, device.subscription)).toEqual([])
        // Left the conversation, still connected (looking at another screen): pushed.
        expect((yield* socket.request("leaveConversation", { conversationId })).event).toBe("ack")
        expect((yield* send(user.token, conversationId, "still there?")).status).toBe(201)
        yield* eventually(() => to(web, device.subscription).length === 1, 5000, "the push")
      }).pipe(Effect.scoped))

    it.effect("a message read on another device within the delay is not pushed", () =>
      Effect.gen(function*() {
        const { web } = yield* Fakes
        const { conversationId, trainer, user } = yield* pair
        const device = yield* registerWebPush(trainer.token)
        expect((yield* send(user.token, conversationId, "read me quickly")).status).toBe(201)
        const read = yield* request("PUT", `/chat/conversations/${conversationId}/read`, { token: trainer.token, body: {} })
        expect(read.status).toBe(200)
        yield* Effect.sleep("1500 millis")
        expect(to(web, device.subscription)).toEqual([])
        // The next message is pushed again.
        expect((yield* send(user.token, conversationId, "and this one?")).status).toBe(201)
        yield* eventually(() => to(web, device.subscription).length === 1, 5000, "the push")
      }))

    it.effect("coalesces: one push for a burst, saying how many, and the next only after PUSH_COALESCE", () =>
      Effect.gen(function*() {
        const { web } = yield* Fakes
        const { conversationId, trainer, user } = yield* pair
        const device = yield* registerWebPush(trainer.token)
        for (const text of ["one", "two", "three"]) expect((yield* send(user.token, conversationId, text)).status).toBe(201)
        yield* eventually(() => to(web, device.subscription).length === 1, 5000, "the push")
        expect(to(web, device.subscription)[0]!.payload).toMatchObject({ body: "3 new messages from Test", badge: 3 })
        const firstAt = Date.now()
        expect((yield* send(user.token, conversationId, "four")).status).toBe(201)
        yield* eventually(() => to(web, device.subscription).length === 2, 6000, "the second push")
        expect(Date.now() - firstAt).toBeGreaterThanOrEqual(1800)
        expect(to(web, device.subscription)[1]!.payload).toMatchObject({
          body: "4 new messages from Test",
          data: { seq: 4, count: 4 }
        })
        yield* Effect.sleep("1 second")
        expect(to(web, device.subscription)).toHaveLength(2)
      }))

    it.effect("preview on: the push carries the message; quiet hours: sent silently; muted: none", () =>
      Effect.gen(function*() {
        const { web } = yield* Fakes
        const a = yield* pair
        const b = yield* pair
        const deviceA = yield* registerWebPush(a.trainer.token)
        const deviceB = yield* registerWebPush(b.trainer.token)
        // Quiet all day long (start 00:00, end 23:59) in the trainer's zone.
        expect(
          (yield* request("PUT", "/users/me/notifications", {
            token: a.trainer.token,
            body: { preview: true, quietHours: { start: "00:00", end: "23:59", timeZone: "Pacific/Auckland" } }
          })).status
        ).toBe(200)
        expect(
          (yield* request("PUT", "/users/me/notifications", {
            token: b.trainer.token,
            body: { mutedConversations: [b.conversationId] }
          })).status
        ).toBe(200)
        expect((yield* send(a.user.token, a.conversationId, "leg day tomorrow")).status).toBe(201)
        expect((yield* send(b.user.token, b.conversationId, "muted, so silent")).status).toBe(201)
        yield* eventually(() => to(web, deviceA.subscription).length === 1, 5000, "the push")
        expect(to(web, deviceA.subscription)[0]!.payload).toMatchObject({ body: "leg day tomorrow", silent: true })
        expect(to(web, deviceA.subscription)[0]!.urgency).toBe("low")
        yield* Effect.sleep("1 second")
        expect(to(web, deviceB.subscription)).toEqual([])
      }))

    it.effect("a closed conversation or a deactivated recipient: none", () =>
      Effect.gen(function*() {
        const { web } = yield* Fakes
        const admin = yield* signInAdmin
        const closed = yield* pair
        const gone = yield* pair
        const deviceClosed = yield* registerWebPush(closed.trainer.token)
        const deviceGone = yield* registerWebPush(gone.trainer.token)
        expect((yield* send(closed.user.token, closed.conversationId, "before the close")).status).toBe(201)
        expect((yield* send(gone.user.token, gone.conversationId, "before deactivation")).status).toBe(201)
        const close = yield* request("PUT", `/chat/admin/conversations/${closed.conversationId}/close`, {
          token: admin.token,
          body: { reason: "test" }
        })
        expect(close.status).toBe(200)
        const off = yield* request("PATCH", `/users/${gone.trainer.id}`, { token: admin.token, body: { isActive: false } })
        expect(off.status).toBe(200)
        yield* Effect.sleep("1500 millis")
        expect(to(web, deviceClosed.subscription)).toEqual([])
        expect(to(web, deviceGone.subscription)).toEqual([])
      }))

    it.effect("FCM: signed service-account token, one send per device; UNREGISTERED removes the device", () =>
      Effect.gen(function*() {
        const { fcm } = yield* Fakes
        const { conversationId, trainer, user } = yield* pair
        const live = yield* registerFcm(trainer.token)
        const dead = yield* registerFcm(trainer.token)
        fcm.answer(dead.token, 404)
        expect((yield* send(user.token, conversationId, "fcm please")).status).toBe(201)
        yield* eventually(() => fcm.received.some((r) => r.token === live.token), 5000, "the push")
        const sent = fcm.received.find((r) => r.token === live.token)!.message
        expect(sent.notification).toEqual({ title: "Test", body: "New message from Test" })
        expect(sent.data).toMatchObject({ conversationId, seq: "1", count: "1", badge: "1" })
        const devices = yield* pollUntil(
          Effect.map(request("GET", "/devices", { token: trainer.token }), (reply): Array<string> | undefined => {
            const ids = reply.body.map((d: any) => d.id)
            return ids.includes(dead.id) ? undefined : ids
          }),
          5000,
          "the unregistered device to go"
        )
        expect(devices).toEqual([live.id])
        expect(fcm.rejected).toEqual([])
      }))

    it.effect("a provider 503 then 200: delivered once", () =>
      Effect.gen(function*() {
        const { fcm } = yield* Fakes
        const { conversationId, trainer, user } = yield* pair
        const device = yield* registerFcm(trainer.token)
        fcm.answer(device.token, 503, 503)
        expect((yield* send(user.token, conversationId, "retry me")).status).toBe(201)
        yield* eventually(() => fcm.received.some((r) => r.token === device.token), 10_000, "the push after the retries")
        yield* Effect.sleep("1 second")
        expect(fcm.received.filter((r) => r.token === device.token)).toHaveLength(1)
      }))

    it.effect("APNs: provider token and topic, alert with badge", () =>
      Effect.gen(function*() {
        const { apns } = yield* Fakes
        const { conversationId, trainer, user } = yield* pair
        const token = "a".repeat(64)
        expect((yield* request("POST", "/devices", { token: trainer.token, body: { platform: "apns", token } })).status).toBe(201)
        expect((yield* send(user.token, conversationId, "apns please")).status).toBe(201)
        yield* eventually(() => apns.received.some((r) => r.token === token), 5000, "the push")
        const got = apns.received.find((r) => r.token === token)!
        expect(got.headers["apns-push-type"]).toBe("alert")
        expect(got.payload.aps).toMatchObject({ alert: { title: "Test", body: "New message from Test" }, badge: 1 })
        expect(got.payload.conversationId).toBe(conversationId)
        expect(apns.rejected).toEqual([])
      }))

    it.effect("a job that keeps failing is given up after PUSH_MAX_ATTEMPTS and shown to admins", () =>
      Effect.gen(function*() {
        const { fcm } = yield* Fakes
        const admin = yield* signInAdmin
        const { conversationId, trainer, user } = yield* pair
        const device = yield* registerFcm(trainer.token)
        fcm.answer(device.token, 503, 503, 503, 503, 503)
        expect((yield* send(user.token, conversationId, "never arrives")).status).toBe(201)
        const dead = yield* pollUntil(
          Effect.map(
            request("GET", "/admin/push/dead", { token: admin.token }),
            (reply) => reply.body.items.find((j: any) => j.conversationId === conversationId)
          ),
          10_000,
          "the job to be given up"
        )
        expect(dead).toMatchObject({ conversationId, userId: trainer.id, attempts: 3 })
        expect(dead.lastError).toContain("FCM 503")
        expect((yield* request("GET", "/admin/push/dead", { token: user.token })).status).toBe(403)
      }))
  })

  layer(TestApp.layer(), { excludeTestServices: true, timeout: 60_000 })("with no provider configured", (it) => {
    it.effect("devices can still be registered; Web Push's key is a 404 and /ready lists no provider", () =>
      Effect.gen(function*() {
        const user = yield* createUser("user")
        expect((yield* request("POST", "/devices", { token: user.token, body: { platform: "fcm", token: "t-off" } })).status)
          .toBe(201)
        const key = yield* request("GET", "/devices/webpush-key", { token: user.token })
        expect(key.status).toBe(404)
        expect(key.body._tag).toBe("WebPushOff")
        expect((yield* request("GET", "/ready")).body.push).toEqual([])
      }))
  })

  layer(appWith({ PUSH_ALLOW_PRIVATE_ENDPOINTS: "false" }), { excludeTestServices: true, timeout: 60_000 })(
    "Web Push endpoints on private addresses",
    (it) => {
      it.effect("are refused at registration when named as such", () =>
        Effect.gen(function*() {
          const { web } = yield* Fakes
          const user = yield* createUser("user")
          const { keys } = web.subscribe()
          for (
            const endpoint of [
              "https://127.0.0.1/push/1",
              "https://localhost/push/1",
              "https://[::1]/push/1",
              "https://10.1.2.3/push/1",
              "https://169.254.169.254/latest/meta-data",
              "https://[::ffff:192.168.1.1]/push/1",
              "https://192.168.0.10:8443/admin"
            ]
          ) {
            const reply = yield* request("POST", "/devices", {
              token: user.token,
              body: { platform: "webpush", subscription: { endpoint, keys } }
            })
            expect(reply.status, endpoint).toBe(400)
            expect(reply.body._tag).toBe("PrivateEndpoint")
          }
          expect((yield* request("GET", "/devices", { token: user.token })).body).toEqual([])
        }))

      it.effect("a name that resolves to a private address is never called, and the device goes", () =>
        Effect.gen(function*() {
          const { web } = yield* Fakes
          const sql = yield* SqlClient.SqlClient
          const { conversationId, trainer, user } = yield* pair
          const subscription = web.subscribe()
          // Registered when the name was public (or written by an older version): it now resolves to loopback.
          const endpoint = subscription.endpoint.replace("127.0.0.1", "localhost")
          yield* sql`INSERT INTO push_devices (user_id, platform, token, p256dh, auth)
                     VALUES (${trainer.id}, 'webpush', ${endpoint}, ${subscription.keys.p256dh}, ${subscription.keys.auth})`
          expect((yield* send(user.token, conversationId, "not for the intranet")).status).toBe(201)
          yield* pollUntil(
            Effect.map(request("GET", "/devices", { token: trainer.token }), (reply) => reply.body.length === 0 || undefined),
            5000,
            "the device to go"
          )
          expect(web.received.filter((r) => endpoint.endsWith(r.subscription))).toEqual([])
        }))

      it("the lookup refuses names of private addresses and passes public ones", async () => {
        const lookup = (host: string) =>
          new Promise<string>((resolve) =>
            safeLookup(host, {}, (error, address) => resolve(error ? String((error as NodeJS.ErrnoException).code) : String(address)))
          )
        expect(await lookup("localhost")).toBe("ERR_PRIVATE_ADDRESS")
        expect(isPrivateAddress("93.184.215.14")).toBe(false)
        expect(isPrivateAddress("2606:4700::6810:85e5")).toBe(false)
        for (const a of ["127.0.0.1", "10.0.0.1", "172.31.255.255", "192.168.1.1", "169.254.169.254", "100.64.0.1", "::1", "fd00::1", "fe80::1", "::ffff:10.0.0.1", "0.0.0.0"]) {
          expect(isPrivateAddress(a), a).toBe(true)
        }
      })
    }
  )
})
