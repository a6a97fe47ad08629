import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { SignJWT } from "jose"
import { history, pair, send } from "../support/Chat.js"
import { connectIo, isEvent, refusedIo } from "../support/SocketIo.js"
import * as TestApp from "../support/TestApp.js"
import { jwtSecret, TestServer } from "../support/TestApp.js"
import { assign, createUser, register, signInAdmin } from "../support/Users.js"
import { connect, floodUntilOffline, is } from "../support/Ws.js"

// The original's clients: socket.io-client with `auth.token`, the original's event names, ack callbacks.
layer(TestApp.layer({ WS_TYPING_EXPIRY_MS: "400" }), { excludeTestServices: true })("Socket.IO door", (it) => {
  it.scoped("connects with a token in auth, a bearer header or the query; refuses anything else with a connect_error", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const user = yield* register("sio")
      for (const via of ["auth", "header", "query"] as const) {
        expect((yield* connectIo(user.token, { via })).socket.connected).toBe(true)
      }
      // A browser app on another origin may poll (CORS as for REST: FRONTEND_URL, "*" by default).
      const polling = yield* Effect.promise(() =>
        fetch(`${server.url}/socket.io/?EIO=4&transport=polling`, { headers: { origin: "https://app.example" } })
      )
      expect(polling.status).toBe(200)
      expect(polling.headers.get("access-control-allow-origin")).toBe("*")
      const missing = yield* refusedIo(undefined)
      expect(missing.data).toEqual({ code: "Forbidden", message: "Missing token" })
      expect((yield* refusedIo("garbage")).data.code).toBe("Forbidden")
      expect((yield* refusedIo("garbage", { via: "header" })).data.code).toBe("Forbidden")
      const expired = yield* Effect.promise(() =>
        new SignJWT({ role: "user" }).setProtectedHeader({ alg: "HS256" }).setSubject(user.id).setIssuer("trainer-chat")
          .setAudience("trainer-chat-api").setIssuedAt().setExpirationTime(Math.floor(Date.now() / 1000) - 10)
          .sign(new TextEncoder().encode(jwtSecret))
      )
      const late = yield* refusedIo(expired)
      expect(late.data.code).toBe("Forbidden")
      expect(late.message).toMatch(/expired/)
      const inactive = yield* register("sio-inactive")
      const admin = yield* signInAdmin
      yield* server.request("PATCH", `/users/${inactive.id}`, { token: admin.token, body: { isActive: false } })
      expect((yield* refusedIo(inactive.token)).data.code).toBe("Forbidden")
    }))

  it.scoped("a Socket.IO user and a native trainer talk: join with history, send acked after commit, both hear it", () =>
    Effect.gen(function*() {
      const { conversationId, trainer, user } = yield* pair
      yield* send(user.token, conversationId, "before the socket")
      const u = yield* connectIo(user.token)
      const t = yield* connect(trainer.token)

      const joined = yield* u.request("joinConversation", { conversationId })
      expect(joined).toEqual({ conversationId, joined: true, toSeq: 1 })
      const page = yield* u.next(isEvent("conversationHistory"))
      expect(page.data).toMatchObject({ conversationId, fromSeq: 1, toSeq: 1, hasMore: false })
      expect(page.data.messages.map((m: { content: string }) => m.content)).toEqual(["before the socket"])
      yield* t.request("joinConversation", { conversationId })
      expect((yield* u.next(isEvent("userJoined"))).data).toEqual({ conversationId, userId: trainer.id })

      const ack = yield* u.request("sendMessage", { conversationId, content: "  hi trainer ", clientMessageId: "m-1" })
      expect(ack.message).toMatchObject({ seq: 2, content: "hi trainer", senderId: user.id, receiverId: trainer.id, clientMessageId: "m-1" })
      expect((yield* t.next(is("newMessage"))).data).toEqual(ack.message)
      expect((yield* u.next(isEvent("newMessage"))).data).toEqual(ack.message)
      // A retry gets the original back; nothing new is stored.
      expect((yield* u.request("sendMessage", { conversationId, content: "hi trainer", clientMessageId: "m-1" })).message.id)
        .toBe(ack.message.id)

      // The original's clients send no clientMessageId: the server makes one, and the message is stored once.
      const bare = yield* u.request("sendMessage", { conversationId, content: "no id" })
      expect(bare.message).toMatchObject({ seq: 3, content: "no id" })
      expect(typeof bare.message.clientMessageId).toBe("string")

      const answer = yield* t.request("sendMessage", { conversationId, content: "hello user", clientMessageId: "t-1" })
      expect((yield* u.next(isEvent("newMessage", (m) => m.seq === 4))).data).toEqual(answer.data.message)
      const stored = (yield* history(user.token, conversationId)).body.messages
      expect(stored.map((m: { content: string }) => m.content)).toEqual(["before the socket", "hi trainer", "no id", "hello user"])

      // Typing, reads and leaving, each with the native data.
      yield* t.send("typing", { conversationId, isTyping: true })
      expect((yield* u.next(isEvent("userTyping"))).data).toEqual({ conversationId, userId: trainer.id, isTyping: true })
      const read = yield* u.request("markAsRead", { messageId: answer.data.message.id })
      expect(read).toMatchObject({ messageId: answer.data.message.id })
      expect((yield* t.next(is("messageRead"))).data).toMatchObject({ conversationId, readerId: user.id, messageId: answer.data.message.id })
      yield* u.request("markAsRead", { conversationId, upToSeq: 4 })
      yield* u.request("leaveConversation", { conversationId })
      expect((yield* t.next(is("userLeft"))).data).toEqual({ conversationId, userId: user.id })
    }))

  it.scoped("a message to someone not in the conversation's room arrives as newMessageNotification", () =>
    Effect.gen(function*() {
      const { conversationId, trainer, user } = yield* pair
      const t = yield* connectIo(trainer.token)
      const u = yield* connectIo(user.token)
      const ack = yield* u.request("sendMessage", { conversationId, content: "are you there?" })
      const note = yield* t.next(isEvent("newMessageNotification"))
      expect(note.data).toEqual({ conversationId, message: ack.message })
    }))

  it.scoped("failures answer the callback with { error }, or an error event without one; nothing a client emits breaks the door", () =>
    Effect.gen(function*() {
      const { conversationId, user } = yield* pair
      const u = yield* connectIo(user.token)
      expect((yield* u.request("sendMessage", { conversationId, content: "" })).error.code).toBe("InvalidData")
      expect((yield* u.request("sendMessage", { conversationId: "not-a-uuid", content: "x" })).error.code).toBe("InvalidData")
      expect((yield* u.request("nope", {})).error.code).toBe("UnknownEvent")
      expect((yield* u.request("sendMessage", Buffer.from("binary"))).error.code).toBe("BadFrame")
      const stranger = yield* register("sio-stranger")
      const s = yield* connectIo(stranger.token)
      expect((yield* s.request("joinConversation", { conversationId })).error.code).toBe("ConversationNotFound")
      // Without a callback, the failure comes as an `error` event.
      yield* u.emit("sendMessage", { conversationId })
      expect((yield* u.next(isEvent("error"))).data.code).toBe("InvalidData")
      // Names Node's EventEmitter or JavaScript treat specially (an "error" without a listener would throw), and
      // odd arguments: each gets its error event, and the process lives on.
      for (const name of ["error", "__proto__", "constructor", "toString", "hasOwnProperty"]) {
        yield* u.emit(name, { x: 1 })
        expect((yield* u.next(isEvent("error"))).data.code).toBe("UnknownEvent")
      }
      yield* u.emit("sendMessage")
      yield* u.emit("sendMessage", null, 1, 2)
      yield* u.emit("typing", { conversationId, isTyping: "yes" })
      const ok = yield* u.request("sendMessage", { conversationId, content: "still here" })
      expect(ok.message.content).toBe("still here")
    }))

  it.scoped("resume after a disconnect with sinceSeq: exactly what was missed, in order, then live", () =>
    Effect.gen(function*() {
      const { conversationId, trainer, user } = yield* pair
      const first = yield* connectIo(user.token)
      yield* first.request("joinConversation", { conversationId })
      const ack = yield* first.request("sendMessage", { conversationId, content: "m1" })
      const seen = ack.message.seq as number
      first.socket.disconnect()
      // Messages keep flowing while the phone is away.
      for (let i = 2; i <= 6; i++) yield* send(trainer.token, conversationId, `m${i}`)
      const again = yield* connectIo(user.token)
      const resumed = yield* again.request("joinConversation", { conversationId, sinceSeq: seen })
      expect(resumed).toMatchObject({ joined: true, toSeq: 6 })
      const page = yield* again.next(isEvent("conversationHistory"))
      expect(page.data.messages.map((m: { seq: number }) => m.seq)).toEqual([2, 3, 4, 5, 6])
      yield* send(trainer.token, conversationId, "m7")
      expect((yield* again.next(isEvent("newMessage"))).data.seq).toBe(7)
    }))

  it.scoped("the long-polling transport carries the same conversation", () =>
    Effect.gen(function*() {
      const { conversationId, trainer, user } = yield* pair
      const u = yield* connectIo(user.token, { transports: ["polling"] })
      expect(u.socket.io.engine.transport.name).toBe("polling")
      const t = yield* connectIo(trainer.token, { transports: ["polling"] })
      yield* t.request("joinConversation", { conversationId })
      const ack = yield* u.request("sendMessage", { conversationId, content: "over polling", clientMessageId: "p-1" })
      expect(ack.message.content).toBe("over polling")
      expect((yield* t.next(isEvent("newMessage"))).data).toEqual(ack.message)
    }))

  it.scoped("the client's default: long-polling first, then the upgrade to WebSocket, with messages flowing across it", () =>
    Effect.gen(function*() {
      const { conversationId, trainer, user } = yield* pair
      const u = yield* connectIo(user.token, { transports: ["polling", "websocket"] })
      const t = yield* connectIo(trainer.token)
      yield* t.request("joinConversation", { conversationId })
      const engine = u.socket.io.engine
      const upgraded = Effect.async<void>((resume) => {
        if (engine.transport.name === "websocket") return resume(Effect.void)
        engine.once("upgrade", () => resume(Effect.void))
      })
      // Sends while the upgrade may still be under way, then after it: every one acked and delivered, in order.
      const early = yield* Effect.forEach([1, 2, 3], (i) => u.request("sendMessage", { conversationId, content: `e${i}` }))
      yield* upgraded.pipe(Effect.timeout("5 seconds"))
      expect(engine.transport.name).toBe("websocket")
      const late = yield* Effect.forEach([4, 5, 6], (i) => u.request("sendMessage", { conversationId, content: `l${i}` }))
      expect([...early, ...late].map((a) => a.message.seq)).toEqual([1, 2, 3, 4, 5, 6])
      yield* t.next(isEvent("newMessage", (m) => m.seq === 6))
      expect(t.events.filter((e) => e.event === "newMessage").map((e) => e.data.seq)).toEqual([1, 2, 3, 4, 5, 6])
    }))

  it.scoped("closing, archiving and deactivation reach Socket.IO sockets", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const admin = yield* signInAdmin
      const a = yield* pair
      const ua = yield* connectIo(a.user.token)
      yield* ua.request("joinConversation", { conversationId: a.conversationId })
      yield* server.request("PUT", `/chat/admin/conversations/${a.conversationId}/close`, { token: admin.token, body: { reason: "spam" } })
      expect((yield* ua.next(isEvent("conversationClosed"))).data).toEqual({ conversationId: a.conversationId, status: "closed", reason: "spam" })
      expect((yield* ua.request("sendMessage", { conversationId: a.conversationId, content: "x" })).error.code).toBe("ConversationClosed")

      const b = yield* pair
      const tb = yield* connectIo(b.trainer.token)
      yield* assign(b.user.id, (yield* createUser("trainer")).id)
      expect((yield* tb.next(isEvent("conversationArchived"))).data).toEqual({ conversationId: b.conversationId, status: "archived" })

      // Deactivated: told why, then disconnected by the server (the client does not reconnect by itself).
      yield* server.request("PATCH", `/users/${b.trainer.id}`, { token: admin.token, body: { isActive: false } })
      expect((yield* tb.next(isEvent("error"))).data).toMatchObject({ code: "SocketClosed", closeCode: 4003 })
      expect(yield* tb.disconnected).toBe("io server disconnect")
    }))
})

layer(
  TestApp.layer({ WS_MAX_BACKPRESSURE_BYTES: "65536", WS_SEND_PER_SECOND: "100000", WS_SEND_BURST: "100000" }),
  { excludeTestServices: true }
)("Socket.IO door under abuse", (it) => {
  it.scoped("a connection that stops reading is cut off (SocketClosed 4009) instead of being buffered without bound", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const { conversationId, trainer, user } = yield* pair
      const slow = yield* connectIo(user.token)
      yield* slow.request("joinConversation", { conversationId })
      const healthy = yield* connect(trainer.token)
      yield* healthy.request("joinConversation", { conversationId })
      // The slow client stops reading from its TCP socket; the trainer keeps writing.
      const engine = slow.socket.io.engine as unknown as { transport: { ws: { _socket: { pause: () => void; resume: () => void } } } }
      const tcp = engine.transport.ws._socket
      tcp.pause()
      const writer = yield* connect(trainer.token)
      const { cutOff, total } = yield* floodUntilOffline(writer, healthy, conversationId, user.id)
      expect(cutOff).toBe(true)
      tcp.resume()
      expect(yield* slow.disconnected).toMatch(/^transport (close|error)$/)
      expect((yield* server.request("GET", "/health")).status).toBe(200)
      expect((yield* history(user.token, conversationId, `?afterSeq=${total - 10}`)).body.messages).toHaveLength(10)
    }), 120_000)

  it.scoped("a packet above WS_MAX_PAYLOAD_BYTES ends only that connection", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const { conversationId, user } = yield* pair
      const big = yield* connectIo(user.token)
      yield* big.emit("sendMessage", { conversationId, content: "x".repeat(70_000) })
      expect(yield* big.disconnected).toMatch(/^transport (close|error)$/)
      expect((yield* server.request("GET", "/health")).status).toBe(200)
      const other = yield* connectIo(user.token)
      expect((yield* other.request("sendMessage", { conversationId, content: "fine" })).message.content).toBe("fine")
    }))

  it.scoped("a token that expires while connected: SocketClosed 4001, and the transport closes (the client may come back with a new one)", () =>
    Effect.gen(function*() {
      const user = yield* register("sio-expiring")
      const soon = yield* Effect.promise(() =>
        new SignJWT({ role: "user" }).setProtectedHeader({ alg: "HS256" }).setSubject(user.id).setIssuer("trainer-chat")
          .setAudience("trainer-chat-api").setIssuedAt().setExpirationTime(Math.floor(Date.now() / 1000) + 2)
          .sign(new TextEncoder().encode(jwtSecret))
      )
      const client = yield* connectIo(soon)
      expect((yield* client.next(isEvent("error"), 5000)).data).toMatchObject({ code: "SocketClosed", closeCode: 4001 })
      expect(yield* client.disconnected).toBe("transport close")
    }))

  it.scoped("events are rate limited per connection (joins here), with retryAfterMs", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const { conversationId, user } = yield* pair
      // This layer lifts the send limit; the join limit (10/s, bursts of 50) is the one to meet here.
      const client = yield* connectIo(user.token)
      const answers = yield* Effect.forEach(
        Array.from({ length: 60 }, () => 0),
        () => client.request("joinConversation", { conversationId }),
        { concurrency: "unbounded" }
      )
      const limited = answers.filter((a) => a.error?.code === "RateLimited")
      expect(limited.length).toBeGreaterThan(0)
      expect(limited[0].error.retryAfterMs).toBeGreaterThan(0)
      expect((yield* server.request("GET", "/health")).status).toBe(200)
    }))
})

layer(TestApp.layer({ SOCKETIO_ENABLED: "false" }), { excludeTestServices: true })("Socket.IO door switched off", (it) => {
  it.scoped("SOCKETIO_ENABLED=false: /socket.io/ is not served, /ws is", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const handshake = yield* Effect.promise(() => fetch(`${server.url}/socket.io/?EIO=4&transport=polling`))
      expect(handshake.status).toBe(404)
      const user = yield* register("sio-off")
      expect((yield* connect(user.token)).socket.readyState).toBe(1)
    }))
})
