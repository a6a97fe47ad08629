import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { pair, send } from "../support/Chat.js"
import * as TestApp from "../support/TestApp.js"
import { TestServer } from "../support/TestApp.js"
import { assign, createUser, register } from "../support/Users.js"
import { connect, is, refusedUpgrade } from "../support/Ws.js"

const deep = (levels: number) => "[".repeat(levels) + "]".repeat(levels)

// Frames up to 60 KB get decoded, so that a 10,000-deep frame reaches the decoder instead of FrameTooLarge.
layer(TestApp.layer({ WS_MAX_FRAME_BYTES: "60000" }), { excludeTestServices: true })("frames that try to hurt", (it) => {
  it.scoped("a frame nested thousands of levels deep, in data or in id, gets an error; the server keeps serving", () =>
    Effect.gen(function*() {
      const { conversationId, trainer, user } = yield* pair
      const attacker = yield* connect(user.token)
      const bystander = yield* connect(trainer.token)
      yield* bystander.request("joinConversation", { conversationId })
      for (const levels of [3000, 10_000]) {
        const nested = deep(levels)
        yield* attacker.raw(`{"event":"joinConversation","id":"d${levels}","data":${nested}}`)
        const inData = yield* attacker.next(is("error"), 5000)
        expect(inData.id).toBe(`d${levels}`)
        expect(inData.data.code).toBe("BadFrame")
        expect(inData.data.message).toMatch(/64 levels/)
        yield* attacker.raw(`{"event":"sendMessage","id":"f${levels}","data":{"conversationId":"${conversationId}","content":${nested},"clientMessageId":"x"}}`)
        const inField = yield* attacker.next(is("error"), 5000)
        expect(inField.id).toBe(`f${levels}`)
        expect(inField.data.code).toBe("BadFrame")
        yield* attacker.raw(`{"event":"typing","data":{},"id":${nested}}`)
        const inId = yield* attacker.next(is("error"), 5000)
        expect(inId.id).toBeUndefined()
        expect(inId.data.code).toBe("BadFrame")
        for (const frame of [inData, inField, inId]) expect(frame.data.message).not.toMatch(/\[\[/)
      }
      // Another socket is served, and so is the attacker's.
      const ack = yield* bystander.request("sendMessage", { conversationId, content: "still up", clientMessageId: "up" })
      expect(ack.event).toBe("ack")
      expect((yield* attacker.request("leaveConversation", { conversationId })).event).toBe("ack")
    }))

  it.scoped("a frame over WS_MAX_PAYLOAD_BYTES closes the socket with 1009 (message too big), with a close frame", () =>
    Effect.gen(function*() {
      const { conversationId, user } = yield* pair
      const u = yield* connect(user.token)
      yield* u.raw(JSON.stringify({ event: "sendMessage", data: { conversationId, content: "x".repeat(70_000), clientMessageId: "huge" } }))
      const closed = yield* u.closed
      expect(closed.code).toBe(1009)
      // Others are served.
      const other = yield* connect(user.token)
      expect((yield* other.request("sendMessage", { conversationId, content: "small", clientMessageId: "small" })).event).toBe("ack")
    }))

  it.scoped("huge numbers in Seq fields are refused or answered, never Internal", () =>
    Effect.gen(function*() {
      const { conversationId, user } = yield* pair
      const u = yield* connect(user.token)
      for (const huge of [2147483648, 2 ** 53 + 2, 1e308]) {
        const join = yield* u.request("joinConversation", { conversationId, sinceSeq: huge })
        expect(join.event === "ack" || join.data.code === "InvalidData", JSON.stringify(join)).toBe(true)
        const read = yield* u.request("markAsRead", { conversationId, upToSeq: huge })
        expect(read.event === "ack" || read.data.code === "InvalidData", JSON.stringify(read)).toBe(true)
      }
    }))

  it.scoped("error messages name the field and the rule, never what was received", () =>
    Effect.gen(function*() {
      const { conversationId, user } = yield* pair
      const u = yield* connect(user.token)
      const secret = "s3cr3t-v4lue"
      const replies = [
        yield* u.request("sendMessage", { conversationId, content: { nested: [secret] }, clientMessageId: "a" }),
        yield* u.request("sendMessage", { conversationId: secret, content: "x", clientMessageId: "b" }),
        yield* u.request("joinConversation", { conversationId, sinceSeq: secret }),
        yield* u.request("markAsRead", { messageId: [secret, { deeper: secret }] }),
        yield* u.request("typing", { conversationId, isTyping: secret }),
        yield* u.request(`${secret}-event`, {}),
        yield* u.request("typing", { conversationId, isTyping: true, [`${secret}-key`]: 1 })
      ]
      for (const reply of replies) {
        expect(reply.event).toBe("error")
        expect(["InvalidData", "UnknownEvent"]).toContain(reply.data.code)
        expect(reply.data.message).not.toContain(secret)
      }
      expect(replies[0]!.data.message).toMatch(/content/)
      expect(replies[4]!.data.message).toMatch(/isTyping/)
      // Nor in the envelope's error.
      yield* u.raw(JSON.stringify({ event: "typing", data: {}, id: 7, [secret]: secret }))
      const envelope = yield* u.next((f) => f.event === "error" && f.id === undefined)
      expect(envelope.data.code).toBe("BadFrame")
      expect(envelope.data.message).not.toContain(secret)
    }))
})

layer(TestApp.layer(), { excludeTestServices: true })("long conversations", (it) => {
  it.scoped("sendMessage without clientMessageId is accepted, as over REST: the server makes one", () =>
    Effect.gen(function*() {
      const { conversationId, user } = yield* pair
      const u = yield* connect(user.token)
      const plain = yield* u.request("sendMessage", { conversationId, content: "no id" })
      expect(plain.event).toBe("ack")
      expect(plain.data.message).toMatchObject({ seq: 1, content: "no id" })
      expect(plain.data.message.clientMessageId).toMatch(/^[0-9a-f-]{36}$/)
      const typed = yield* u.request("sendMessage", { conversationId, type: "text", content: "  typed  " })
      expect(typed.data.message).toMatchObject({ seq: 2, content: "typed" })
      expect(typed.data.message.clientMessageId).not.toBe(plain.data.message.clientMessageId)
    }))

  it.scoped("joining a conversation of 120 messages without sinceSeq goes live: the latest page, then newMessage and userJoined", () =>
    Effect.gen(function*() {
      const { conversationId, trainer, user } = yield* pair
      yield* Effect.forEach(Array.from({ length: 120 }, (_, i) => i + 1), (i) => send(trainer.token, conversationId, `m${i}`), {
        concurrency: 8
      })
      const t = yield* connect(trainer.token)
      const u = yield* connect(user.token)
      yield* t.request("joinConversation", { conversationId })
      const joined = yield* u.request("joinConversation", { conversationId })
      expect(joined.data).toEqual({ conversationId, joined: true, toSeq: 120 })
      const page = yield* u.next(is("conversationHistory"))
      expect(page.data).toMatchObject({ fromSeq: 71, toSeq: 120, hasMore: true })
      expect((yield* t.next(is("userJoined", (d) => d.userId === user.id))).data.conversationId).toBe(conversationId)
      yield* t.request("sendMessage", { conversationId, content: "live", clientMessageId: "live-1" })
      expect((yield* u.next(is("newMessage"))).data).toMatchObject({ seq: 121, content: "live" })
      // A catch-up from far behind still pages on before going live.
      const behind = yield* connect(user.token)
      const first = yield* behind.request("joinConversation", { conversationId, sinceSeq: 0 })
      expect(first.data).toEqual({ conversationId, joined: false, toSeq: 100 })
      const rest = yield* behind.request("joinConversation", { conversationId, sinceSeq: 100 })
      expect(rest.data).toEqual({ conversationId, joined: true, toSeq: 121 })
    }), 60_000)
})

layer(
  TestApp.layer({
    WS_MAX_SOCKETS_PER_USER: "3",
    WS_JOIN_PER_SECOND: "0.5",
    WS_JOIN_BURST: "5",
    WS_READ_PER_SECOND: "0.5",
    WS_READ_BURST: "3",
    WS_MAX_JOINED_PER_SOCKET: "2"
  }),
  { excludeTestServices: true }
)("per-user and per-socket caps", (it) => {
  it.scoped("a user holds at most WS_MAX_SOCKETS_PER_USER sockets: beyond, the upgrade is 429 TooManyConnections", () =>
    Effect.gen(function*() {
      const user = yield* register("many")
      const attempts = yield* Effect.all(
        Array.from({ length: 10 }, () => Effect.either(connect(user.token))),
        { concurrency: "unbounded" }
      )
      const open = attempts.filter((a) => a._tag === "Right")
      expect(open).toHaveLength(3)
      for (const attempt of attempts) {
        if (attempt._tag === "Left") expect(attempt.left.message).toMatch(/^429 .*TooManyConnections/)
      }
      // One closes: room for another.
      if (open[0]?._tag === "Right") open[0].right.socket.close()
      yield* Effect.sleep("200 millis")
      yield* connect(user.token)
      expect((yield* refusedUpgrade(user.token)).message).toMatch(/^429 /)
      // Someone else is not affected.
      yield* connect((yield* register("other")).token)
    }))

  it.scoped("joinConversation and markAsRead are rate limited per socket; a socket joins a bounded number of conversations", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const { conversationId, trainer, user } = yield* pair
      const u = yield* connect(user.token)
      const joins = yield* Effect.forEach(Array.from({ length: 7 }), () => u.request("joinConversation", { conversationId }))
      expect(joins.map((r) => r.event)).toEqual(["ack", "ack", "ack", "ack", "ack", "error", "error"])
      expect(joins[5]!.data.code).toBe("RateLimited")
      expect(joins[5]!.data.retryAfterMs).toBeGreaterThan(0)
      const reads = yield* Effect.forEach(Array.from({ length: 4 }), () => u.request("markAsRead", { conversationId }))
      expect(reads.map((r) => r.event)).toEqual(["ack", "ack", "ack", "error"])
      expect(reads[3]!.data).toMatchObject({ code: "RateLimited" })

      // The trainer talks with three users: one socket joins at most two of the conversations at a time.
      const conversations = [conversationId]
      for (const _ of [1, 2]) {
        const other = yield* createUser("user")
        yield* assign(other.id, trainer.id)
        const opened = yield* server.request("POST", "/chat/conversations", { token: other.token, body: { participantId: trainer.id } })
        conversations.push(opened.body.id)
      }
      const t = yield* connect(trainer.token)
      expect((yield* t.request("joinConversation", { conversationId: conversations[0] })).event).toBe("ack")
      expect((yield* t.request("joinConversation", { conversationId: conversations[1] })).event).toBe("ack")
      // Joining one already joined again is fine.
      expect((yield* t.request("joinConversation", { conversationId: conversations[1] })).event).toBe("ack")
      const third = yield* t.request("joinConversation", { conversationId: conversations[2] })
      expect(third.data.code).toBe("TooManyJoined")
      yield* t.request("leaveConversation", { conversationId: conversations[0] })
      expect((yield* t.request("joinConversation", { conversationId: conversations[2] })).event).toBe("ack")
    }))
})
