import { expect, it } from "@effect/vitest"
import { Effect, Logger, LogLevel } from "effect"
import { history, pair, send } from "../support/Chat.js"
import { freshDatabase, freshRedis } from "../support/Database.js"
import { startInstance } from "../support/Instances.js"
import { TestServer } from "../support/TestApp.js"
import { assign, createUser, signIn, signInAdmin } from "../support/Users.js"
import { connect, is } from "../support/Ws.js"

// Several instances share one Postgres and one Redis; PGlite is one process's database.
const ready = process.env.DATABASE_URL && process.env.REDIS_URL
const why = "needs DATABASE_URL and REDIS_URL: instances share a Postgres and a Redis"

it.live.skipIf(!ready)(`three instances behave as one (${why})`, () =>
  Effect.gen(function*() {
    const env = { ...(yield* freshDatabase), ...(yield* freshRedis), SEND_RATE_LIMIT: "12", SEND_RATE_WINDOW: "1 minute"  }
    const [a, b, c] = yield* Effect.all([startInstance(env), startInstance(env), startInstance(env)], { concurrency: 3 })
    const on = <A, E, R>(instance: typeof a, effect: Effect.Effect<A, E, R>) =>
      Effect.provideService(effect, TestServer, instance.server)

    const { conversationId, trainer, user } = yield* on(a, pair)
    // The trainer on B (phone) and C (web); the user sends from A.
    const phone = yield* on(b, connect(trainer.token))
    const web = yield* on(c, connect(trainer.token))
    yield* web.request("joinConversation", { conversationId })
    const sender = yield* on(a, connect(user.token))
    expect((yield* phone.next(is("presence"))).data).toMatchObject({ userId: user.id, online: true })
    yield* sender.request("joinConversation", { conversationId })
    expect((yield* web.next(is("userJoined"))).data.userId).toBe(user.id)

    // Messages: in order, once, to the room on C and as a notification on B.
    for (const i of [1, 2, 3, 4, 5]) {
      expect((yield* sender.request("sendMessage", { conversationId, content: `m${i}`, clientMessageId: `x${i}` })).event).toBe("ack")
    }
    yield* web.next(is("newMessage", (m) => m.seq === 5))
    yield* phone.next(is("newMessageNotification", (n) => n.message.seq === 5))
    yield* Effect.sleep("200 millis")
    expect(web.frames.filter((f) => f.event === "newMessage").map((f) => f.data.seq)).toEqual([1, 2, 3, 4, 5])
    expect(phone.frames.filter((f) => f.event === "newMessageNotification").map((f) => f.data.message.seq)).toEqual([1, 2, 3, 4, 5])
    // A retry on another instance's socket broadcasts nothing.
    const retry = yield* on(b, connect(user.token))
    expect((yield* retry.request("sendMessage", { conversationId, content: "m5", clientMessageId: "x5" })).data.message.seq).toBe(5)

    // Typing and receipts cross instances too.
    yield* sender.request("typing", { conversationId, isTyping: true })
    expect((yield* web.next(is("userTyping"))).data).toMatchObject({ userId: user.id, isTyping: true })
    yield* web.request("markAsRead", { conversationId })
    expect((yield* sender.next(is("messageRead"))).data).toMatchObject({ readerId: trainer.id, upToSeq: 5 })
    // A REST send on C reaches the user's socket on A.
    const rest = yield* on(c, send(trainer.token, conversationId, "from C over REST"))
    expect((yield* sender.next(is("newMessage", (m) => m.id === rest.body.id))).data.seq).toBe(6)
    yield* Effect.sleep("200 millis")
    expect(web.frames.filter((f) => f.event === "newMessage").map((f) => f.data.seq)).toEqual([1, 2, 3, 4, 5, 6])

    // History pages cached on one instance follow changes made on another (page versions in Redis).
    const seqsOn = (instance: typeof a) =>
      on(instance, history(user.token, conversationId)).pipe(
        Effect.map((reply) => (reply.body.messages as Array<{ seq: number; isRead: boolean }>).map((m) => [m.seq, m.isRead]))
      )
    expect((yield* seqsOn(b)).at(-1)).toEqual([6, false])
    expect((yield* seqsOn(b)).at(-1)).toEqual([6, false])
    expect((yield* on(a, send(trainer.token, conversationId, "from A over REST"))).status).toBe(201)
    expect((yield* seqsOn(b)).at(-1)).toEqual([7, false])
    yield* sender.request("markAsRead", { conversationId })
    expect((yield* seqsOn(b)).slice(-2)).toEqual([[6, true], [7, true]])

    // Rate limits are shared: one user's 13th send in the window fails, whichever instance it lands on.
    const busy = yield* on(b, pair)
    const statuses: Array<number> = []
    for (let i = 0; i < 13; i++) {
      const instance = [a, b, c][i % 3]!
      statuses.push((yield* on(instance, send(busy.user.token, busy.conversationId, `n${i}`))).status)
    }
    expect(statuses).toEqual([...Array(12).fill(201), 429])

    // Closing on A reaches C within a second; reassigning on B reaches A; deactivating on C closes sockets on A and B.
    const admin = yield* on(a, signInAdmin)
    const closedAt = Date.now()
    yield* a.server.request("PUT", `/chat/admin/conversations/${conversationId}/close`, { token: admin.token, body: {} })
    yield* web.next(is("conversationClosed"), 1000)
    expect(Date.now() - closedAt).toBeLessThan(1000)
    expect((yield* retry.request("sendMessage", { conversationId, content: "late", clientMessageId: "late" })).data.code).toBe("ConversationClosed")

    const second = yield* on(b, pair)
    const onA = yield* on(a, connect(second.user.token))
    yield* on(b, Effect.flatMap(createUser("trainer"), (other) => assign(second.user.id, other.id)))
    yield* onA.next(is("conversationArchived"), 1000)

    const revokedAt = Date.now()
    yield* c.server.request("PATCH", `/users/${user.id}`, { token: admin.token, body: { isActive: false } })
    expect((yield* sender.closed).code).toBe(4003)
    expect((yield* retry.closed).code).toBe(4003)
    expect(Date.now() - revokedAt).toBeLessThan(1000)
  }).pipe(Effect.scoped, Effect.provide(Logger.minimumLogLevel(LogLevel.Warning))), 120_000)

it.live.skipIf(!ready)(`a crashed instance's users go offline for the others (${why})`, () =>
  Effect.gen(function*() {
    const env = {
      ...(yield* freshDatabase),
      ...(yield* freshRedis),
      PRESENCE_LEASE_MS: "1500",
      PRESENCE_HEARTBEAT: "300 millis"
    }
    const [a, b] = yield* Effect.all([startInstance(env), startInstance(env)], { concurrency: 2 })
    const { trainer, user } = yield* Effect.provideService(pair, TestServer, a.server)
    const watcher = yield* Effect.provideService(connect(trainer.token), TestServer, b.server)
    yield* Effect.provideService(connect(user.token), TestServer, a.server)
    yield* watcher.next(is("presence", (p) => p.online))
    a.child.kill("SIGKILL")
    const killedAt = Date.now()
    expect((yield* watcher.next(is("presence", (p) => !p.online), 10_000)).data.userId).toBe(user.id)
    expect(Date.now() - killedAt).toBeLessThan(5000)
  }).pipe(Effect.scoped, Effect.provide(Logger.minimumLogLevel(LogLevel.Warning))), 60_000)

it.live.skipIf(!ready)(`logout on one instance: that session's sockets close on every instance, at once; others stay (${why})`, () =>
  Effect.gen(function*() {
    const env = { ...(yield* freshDatabase), ...(yield* freshRedis) }
    const [a, b] = yield* Effect.all([startInstance(env), startInstance(env)], { concurrency: 2 })
    const user = yield* Effect.provideService(createUser("user"), TestServer, a.server)
    // Two sessions of one user: the phone's sockets on both instances, the laptop's on B.
    const phone = yield* Effect.provideService(signIn(user.email, user.password), TestServer, a.server)
    const laptop = yield* Effect.provideService(signIn(user.email, user.password), TestServer, b.server)
    const phoneOnA = yield* Effect.provideService(connect(phone.token), TestServer, a.server)
    const phoneOnB = yield* Effect.provideService(connect(phone.token), TestServer, b.server)
    const laptopOnB = yield* Effect.provideService(connect(laptop.token), TestServer, b.server)
    const loggedOutAt = Date.now()
    expect((yield* a.server.request("POST", "/auth/logout", { token: phone.token })).status).toBe(204)
    expect((yield* phoneOnA.closed).code).toBe(4005)
    expect((yield* phoneOnB.closed).code).toBe(4005)
    expect(Date.now() - loggedOutAt).toBeLessThan(1000)
    // The token is refused on the other instance at once, not after its cache's few seconds.
    expect((yield* b.server.request("GET", "/auth/sessions", { token: phone.token })).status).toBe(401)
    expect((yield* b.server.request("GET", "/auth/sessions", { token: laptop.token })).status).toBe(200)
    expect(laptopOnB.socket.readyState).toBe(laptopOnB.socket.OPEN)
  }).pipe(Effect.scoped, Effect.provide(Logger.minimumLogLevel(LogLevel.Warning))), 60_000)
