import { expect, layer } from "@effect/vitest"
import { Effect, Schedule } from "effect"
import { SignJWT } from "jose"
import { history, pair, send } from "../support/Chat.js"
import * as TestApp from "../support/TestApp.js"
import { jwtSecret, TestServer } from "../support/TestApp.js"
import { assign, createUser, register, signInAdmin } from "../support/Users.js"
import { connect, floodUntilOffline, is, refusedUpgrade } from "../support/Ws.js"

layer(TestApp.layer({ WS_TYPING_EXPIRY_MS: "400" }), { excludeTestServices: true })("gateway", (it) => {
  it.scoped("the upgrade needs a valid token of an active user, by header or query; otherwise 401 before upgrading", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const user = yield* register("ws")
      const viaHeader = yield* connect(user.token)
      const viaQuery = yield* connect(user.token, { via: "query" })
      expect(viaHeader.socket.readyState).toBe(1)
      expect(viaQuery.socket.readyState).toBe(1)

      expect((yield* refusedUpgrade(undefined)).message).toMatch(/^401 /)
      expect((yield* refusedUpgrade("garbage")).message).toMatch(/^401 /)
      expect((yield* refusedUpgrade("garbage", { via: "query" })).message).toMatch(/^401 /)
      const expired = yield* Effect.promise(() =>
        new SignJWT({ role: "user" }).setProtectedHeader({ alg: "HS256" }).setSubject(user.id).setIssuer("trainer-chat")
          .setAudience("trainer-chat-api").setIssuedAt().setExpirationTime(Math.floor(Date.now() / 1000) - 10)
          .sign(new TextEncoder().encode(jwtSecret))
      )
      expect((yield* refusedUpgrade(expired)).message).toMatch(/^401 .*expired/)

      const inactive = yield* register("inactive")
      const admin = yield* signInAdmin
      yield* server.request("PATCH", `/users/${inactive.id}`, { token: admin.token, body: { isActive: false } })
      expect((yield* refusedUpgrade(inactive.token)).message).toMatch(/^401 /)
    }))

  it.scoped("join gets the history; a send is acked after commit and reaches every socket in the room", () =>
    Effect.gen(function*() {
      const { conversationId, trainer, user } = yield* pair
      yield* send(user.token, conversationId, "before the socket")
      const u = yield* connect(user.token)
      const t = yield* connect(trainer.token)

      const joined = yield* u.request("joinConversation", { conversationId })
      expect(joined.event).toBe("ack")
      const page = yield* u.next(is("conversationHistory"))
      expect(page.data).toMatchObject({ conversationId, fromSeq: 1, toSeq: 1, hasMore: false })
      expect(page.data.messages.map((m: { content: string }) => m.content)).toEqual(["before the socket"])
      yield* t.request("joinConversation", { conversationId })
      expect((yield* u.next(is("userJoined"))).data).toEqual({ conversationId, userId: trainer.id })

      const ack = yield* u.request("sendMessage", { conversationId, content: "  hi trainer ", clientMessageId: "m-1" })
      expect(ack.event).toBe("ack")
      expect(ack.data.message).toMatchObject({ seq: 2, content: "hi trainer", senderId: user.id, receiverId: trainer.id, clientMessageId: "m-1" })
      const live = yield* t.next(is("newMessage"))
      expect(live.data).toEqual(ack.data.message)
      expect((yield* u.next(is("newMessage"))).data.id).toBe(ack.data.message.id)
      // It is in the database.
      const stored = (yield* history(trainer.token, conversationId)).body.messages
      expect(stored.at(-1).id).toBe(ack.data.message.id)
    }))

  it.scoped("a recipient's sockets that have not joined get newMessageNotification; every device of a user gets events", () =>
    Effect.gen(function*() {
      const { conversationId, trainer, user } = yield* pair
      const phone = yield* connect(trainer.token)
      const tablet = yield* connect(trainer.token)
      const web = yield* connect(trainer.token)
      yield* web.request("joinConversation", { conversationId })
      const u = yield* connect(user.token)
      yield* u.request("sendMessage", { conversationId, content: "ping", clientMessageId: "n-1" })
      for (const device of [phone, tablet]) {
        const notified = yield* device.next(is("newMessageNotification"))
        expect(notified.data).toMatchObject({ conversationId, message: { content: "ping" } })
      }
      expect((yield* web.next(is("newMessage"))).data.content).toBe("ping")
      yield* Effect.sleep("100 millis")
      expect(web.frames.filter((f) => f.event === "newMessageNotification")).toHaveLength(0)
      expect(phone.frames.filter((f) => f.event === "newMessage")).toHaveLength(0)
    }))

  it.scoped("a retried clientMessageId gets the original ack and broadcasts nothing again", () =>
    Effect.gen(function*() {
      const { conversationId, trainer, user } = yield* pair
      const u = yield* connect(user.token)
      const t = yield* connect(trainer.token)
      yield* t.request("joinConversation", { conversationId })
      const first = yield* u.request("sendMessage", { conversationId, content: "once", clientMessageId: "dup" })
      const again = yield* u.request("sendMessage", { conversationId, content: "once", clientMessageId: "dup" })
      expect(again.data).toEqual(first.data)
      yield* t.next(is("newMessage"))
      yield* Effect.sleep("200 millis")
      expect(t.frames.filter((f) => f.event === "newMessage")).toHaveLength(1)
    }))

  it.scoped("resume: after a disconnect, joining with sinceSeq returns exactly what was missed, then live messages", () =>
    Effect.gen(function*() {
      const { conversationId, trainer, user } = yield* pair
      const first = yield* Effect.scoped(Effect.gen(function*() {
        const u = yield* connect(user.token)
        yield* u.request("joinConversation", { conversationId })
        for (const i of [1, 2, 3]) yield* u.request("sendMessage", { conversationId, content: `m${i}`, clientMessageId: `r${i}` })
        yield* u.next(is("newMessage", (m) => m.seq === 3))
        return 3
      }))
      // Offline: the trainer keeps writing (over REST) while the user is away.
      for (const i of [4, 5, 6, 7]) yield* send(trainer.token, conversationId, `m${i}`)
      const u = yield* connect(user.token)
      const resumed = yield* u.request("joinConversation", { conversationId, sinceSeq: first })
      expect(resumed.data).toMatchObject({ joined: true, toSeq: 7 })
      const page = yield* u.next(is("conversationHistory"))
      expect(page.data.messages.map((m: { seq: number }) => m.seq)).toEqual([4, 5, 6, 7])
      expect(page.data).toMatchObject({ fromSeq: 4, toSeq: 7, hasMore: false })
      yield* send(trainer.token, conversationId, "m8")
      expect((yield* u.next(is("newMessage"))).data.seq).toBe(8)
    }))

  it.scoped("resume while messages keep flowing: no gap and no duplicate", () =>
    Effect.gen(function*() {
      const { conversationId, trainer, user } = yield* pair
      for (const i of [1, 2, 3, 4, 5]) yield* send(trainer.token, conversationId, `m${i}`)
      const t = yield* connect(trainer.token)
      const total = 40
      // The trainer keeps sending while the user joins from seq 2.
      const sending = yield* Effect.forEach(
        Array.from({ length: total - 5 }, (_, i) => i + 6),
        (i) => t.request("sendMessage", { conversationId, content: `m${i}`, clientMessageId: `f${i}` }),
        { concurrency: 4 }
      ).pipe(Effect.fork)
      yield* Effect.sleep("20 millis")
      const u = yield* connect(user.token)
      yield* u.request("joinConversation", { conversationId, sinceSeq: 2 })
      yield* Effect.fromFiber(sending)
      const seenSeqs = () =>
        u.frames.flatMap((f) =>
          f.event === "conversationHistory"
            ? f.data.messages.map((m: { seq: number }) => m.seq)
            : f.event === "newMessage"
            ? [f.data.seq]
            : []
        )
      // Everything arrives, by history or live (a message may be held briefly to restore seq order).
      yield* Effect.suspend(() => new Set(seenSeqs()).size >= total - 2 ? Effect.void : Effect.fail("not yet")).pipe(
        Effect.retry(Schedule.spaced("20 millis")),
        Effect.timeout("5 seconds"),
        Effect.ignore
      )
      yield* Effect.sleep("300 millis")
      const seen = seenSeqs()
      expect([...seen].sort((a, b) => a - b)).toEqual(Array.from({ length: total - 2 }, (_, i) => i + 3))
    }))

  it.scoped("bad frames get an error with a code and the connection stays open", () =>
    Effect.gen(function*() {
      const { conversationId, user } = yield* pair
      const u = yield* connect(user.token)
      yield* u.raw("{not json")
      expect((yield* u.next(is("error"))).data.code).toBe("BadJson")
      yield* u.raw(JSON.stringify({ event: "dance", data: {}, id: "x1" }))
      expect(yield* u.next(is("error"))).toMatchObject({ id: "x1", data: { code: "UnknownEvent" } })
      yield* u.raw(JSON.stringify([1, 2]))
      expect((yield* u.next(is("error"))).data.code).toBe("BadFrame")
      const invalid = yield* u.request("sendMessage", { conversationId, content: "", clientMessageId: "e" })
      expect(invalid.event).toBe("error")
      expect(invalid.data.code).toBe("InvalidData")
      expect(invalid.data.message).toMatch(/content/)
      expect((yield* u.request("sendMessage", { conversationId: "nope", content: "x", clientMessageId: "e" })).data.code).toBe("InvalidData")
      expect((yield* u.request("sendMessage", { conversationId, content: "x", clientMessageId: "" })).data.message).toMatch(/clientMessageId/)
      expect((yield* u.request("joinConversation", { conversationId: crypto.randomUUID() })).data.code).toBe("ConversationNotFound")
      yield* u.raw(JSON.stringify({ event: "sendMessage", data: { conversationId, content: "x".repeat(20_000), clientMessageId: "big" } }))
      yield* u.next(is("error", (d) => d.code === "FrameTooLarge"))
      yield* u.raw(Buffer.from([1, 2, 3]))
      expect((yield* u.next(is("error", (d) => d.code === "BadFrame"))).data.message).toMatch(/JSON text/)
      // Still open, and nothing was written.
      const ok = yield* u.request("sendMessage", { conversationId, content: "still here", clientMessageId: "ok" })
      expect(ok.data.message.seq).toBe(1)
    }))

  it.scoped("typing reaches the counterpart, throttled, and expires by itself", () =>
    Effect.gen(function*() {
      const { conversationId, trainer, user } = yield* pair
      const u = yield* connect(user.token)
      const t = yield* connect(trainer.token)
      yield* t.request("joinConversation", { conversationId })
      yield* u.request("typing", { conversationId, isTyping: true })
      yield* u.request("typing", { conversationId, isTyping: true })
      expect((yield* t.next(is("userTyping"))).data).toEqual({ conversationId, userId: user.id, isTyping: true })
      // Not refreshed: it ends by itself.
      expect((yield* t.next(is("userTyping"), 2000)).data.isTyping).toBe(false)
      expect(t.frames.filter((f) => f.event === "userTyping")).toHaveLength(2)
      const stranger = yield* connect((yield* register("stranger")).token)
      expect((yield* stranger.request("typing", { conversationId, isTyping: true })).data.code).toBe("ConversationNotFound")
    }))

  it.scoped("markAsRead sends messageRead to the sender; REST sends reach sockets too", () =>
    Effect.gen(function*() {
      const { conversationId, trainer, user } = yield* pair
      const u = yield* connect(user.token)
      const t = yield* connect(trainer.token)
      yield* u.request("joinConversation", { conversationId })
      const rest = yield* send(trainer.token, conversationId, "over REST")
      expect((yield* u.next(is("newMessage"))).data.id).toBe(rest.body.id)
      const one = yield* u.request("markAsRead", { messageId: rest.body.id })
      expect(one.data).toEqual({ messageId: rest.body.id, isRead: true })
      expect((yield* t.next(is("messageRead"))).data).toMatchObject({ conversationId, readerId: user.id, messageId: rest.body.id })
      yield* send(trainer.token, conversationId, "two")
      const all = yield* u.request("markAsRead", { conversationId, upToSeq: 2 })
      expect(all.data).toEqual({ conversationId, changed: 1, readSeq: 2 })
      expect((yield* t.next(is("messageRead"))).data).toMatchObject({ upToSeq: 2, messageId: null })
    }))

  it.scoped("closing and archiving reach live sockets, and later sends fail with a code", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const admin = yield* signInAdmin
      const a = yield* pair
      const ua = yield* connect(a.user.token)
      yield* ua.request("joinConversation", { conversationId: a.conversationId })
      yield* server.request("PUT", `/chat/admin/conversations/${a.conversationId}/close`, { token: admin.token, body: { reason: "spam" } })
      expect((yield* ua.next(is("conversationClosed"))).data).toEqual({ conversationId: a.conversationId, status: "closed", reason: "spam" })
      expect(ua.frames.find((f) => f.event === "newMessage")?.data.type).toBe("system")
      expect((yield* ua.request("sendMessage", { conversationId: a.conversationId, content: "x", clientMessageId: "c" })).data.code).toBe("ConversationClosed")

      const b = yield* pair
      const tb = yield* connect(b.trainer.token)
      yield* assign(b.user.id, (yield* createUser("trainer")).id)
      expect((yield* tb.next(is("conversationArchived"))).data).toEqual({ conversationId: b.conversationId, status: "archived" })
      expect((yield* tb.request("sendMessage", { conversationId: b.conversationId, content: "x", clientMessageId: "c" })).data.code).toBe("ConversationArchived")
    }))

  it.scoped("presence: counterparts hear online and offline, and the conversation list shows it", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const { conversationId, trainer, user } = yield* pair
      const t = yield* connect(trainer.token)
      const listed = () =>
        Effect.map(server.request("GET", "/chat/conversations", { token: trainer.token }), (reply) =>
          reply.body.items.find((c: { id: string }) => c.id === conversationId).presence)
      expect(yield* listed()).toEqual({ online: false, lastSeenAt: null })

      yield* Effect.scoped(Effect.gen(function*() {
        const phone = yield* connect(user.token)
        expect((yield* t.next(is("presence"))).data).toEqual({ userId: user.id, online: true, lastSeenAt: null })
        // A second device changes nothing for the others.
        yield* connect(user.token)
        expect(yield* listed()).toEqual({ online: true, lastSeenAt: null })
        return phone
      }))
      const offline = yield* t.next(is("presence"))
      expect(offline.data).toMatchObject({ userId: user.id, online: false })
      expect(typeof offline.data.lastSeenAt).toBe("string")
      expect(t.frames.filter((f) => f.event === "presence")).toHaveLength(2)
      expect(yield* listed()).toEqual({ online: false, lastSeenAt: offline.data.lastSeenAt })
    }))

  it.scoped("deactivating a user closes their sockets with 4003; an expiring token closes with 4001", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const admin = yield* signInAdmin
      const user = yield* register("revoked")
      const socket = yield* connect(user.token)
      yield* server.request("PATCH", `/users/${user.id}`, { token: admin.token, body: { isActive: false } })
      expect((yield* socket.closed).code).toBe(4003)

      const other = yield* register("expiring")
      const shortLived = yield* Effect.promise(() =>
        new SignJWT({ role: "user" }).setProtectedHeader({ alg: "HS256" }).setSubject(other.id).setIssuer("trainer-chat")
          .setAudience("trainer-chat-api").setIssuedAt().setExpirationTime(Math.floor(Date.now() / 1000) + 1)
          .sign(new TextEncoder().encode(jwtSecret))
      )
      const expiring = yield* connect(shortLived)
      expect((yield* expiring.closed).code).toBe(4001)
    }))
})

layer(TestApp.layer({ WS_SEND_BURST: "3", WS_SEND_PER_SECOND: "1" }), { excludeTestServices: true })("gateway limits", (it) => {
  it.scoped("sends beyond the per-socket limit get RateLimited with retryAfterMs, and are not stored", () =>
    Effect.gen(function*() {
      const { conversationId, user } = yield* pair
      const u = yield* connect(user.token)
      const replies = yield* Effect.forEach([1, 2, 3, 4, 5], (i) =>
        u.request("sendMessage", { conversationId, content: `m${i}`, clientMessageId: `l${i}` }))
      expect(replies.map((r) => r.event)).toEqual(["ack", "ack", "ack", "error", "error"])
      expect(replies[3]!.data.code).toBe("RateLimited")
      expect(replies[3]!.data.retryAfterMs).toBeGreaterThan(0)
      expect((yield* history(user.token, conversationId)).body.messages).toHaveLength(3)
    }))
})

layer(
  TestApp.layer({ WS_MAX_BACKPRESSURE_BYTES: "65536", WS_SEND_PER_SECOND: "100000", WS_SEND_BURST: "100000" }),
  { excludeTestServices: true }
)("gateway backpressure", (it) => {
  it.scoped("a socket that stops reading is cut off with 4009 instead of being buffered without bound", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const { conversationId, trainer, user } = yield* pair
      const slow = yield* connect(user.token)
      yield* slow.request("joinConversation", { conversationId })
      const healthy = yield* connect(trainer.token)
      yield* healthy.request("joinConversation", { conversationId })
      // The slow client stops reading from its TCP socket; the trainer keeps writing.
      const tcp = (slow.socket as unknown as { _socket: { pause: () => void; resume: () => void } })._socket
      tcp.pause()
      // Write until the server gives up on the slow socket (its user goes offline for the trainer).
      const writer = yield* connect(trainer.token)
      const { cutOff, total } = yield* floodUntilOffline(writer, healthy, conversationId, user.id)
      expect(cutOff).toBe(true)
      yield* healthy.next(is("newMessage", (m) => m.seq === total), 10_000)
      tcp.resume()
      const closed = yield* slow.closed
      expect(closed.code).toBe(4009)
      // Everyone else is fine, and nothing was lost: the slow one resumes from the database.
      expect((yield* server.request("GET", "/health")).status).toBe(200)
      expect((yield* history(user.token, conversationId, `?afterSeq=${total - 10}`)).body.messages).toHaveLength(10)
    }), 120_000)
})
