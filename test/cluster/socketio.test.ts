import { expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { pair } from "../support/Chat.js"
import { freshDatabase, freshRedis } from "../support/Database.js"
import { startInstance } from "../support/Instances.js"
import { connectIo, isEvent } from "../support/SocketIo.js"
import { TestServer } from "../support/TestApp.js"
import { connect, is } from "../support/Ws.js"

// Several instances share one Postgres and one Redis; PGlite is one process's database.
const ready = process.env.DATABASE_URL && process.env.REDIS_URL
const why = "needs DATABASE_URL and REDIS_URL: instances share a Postgres and a Redis"

it.scopedLive.skipIf(!ready)(`Socket.IO and native sockets on two instances hear each other once, in order (${why})`, () =>
  Effect.gen(function*() {
    const env = { ...(yield* freshDatabase), ...(yield* freshRedis) }
    const [a, b] = yield* Effect.all([startInstance(env), startInstance(env)], { concurrency: 2 })
    const on = <A, E, R>(instance: typeof a, effect: Effect.Effect<A, E, R>) =>
      Effect.provideService(effect, TestServer, instance.server)

    const { conversationId, trainer, user } = yield* on(a, pair)
    // The trainer on B twice: a phone on Socket.IO (not in the room) and the web app on /ws (in the room).
    const phone = yield* on(b, connectIo(trainer.token))
    const web = yield* on(b, connect(trainer.token))
    yield* web.request("joinConversation", { conversationId })
    // The user sends from A over Socket.IO, and follows the room there.
    const sender = yield* on(a, connectIo(user.token))
    expect((yield* phone.next(isEvent("presence"))).data).toMatchObject({ userId: user.id, online: true })
    yield* sender.request("joinConversation", { conversationId })
    expect((yield* web.next(is("userJoined"))).data.userId).toBe(user.id)

    const acks = []
    for (const i of [1, 2, 3, 4, 5]) acks.push(yield* sender.request("sendMessage", { conversationId, content: `m${i}` }))
    expect(acks.map((ack) => ack.message.seq)).toEqual([1, 2, 3, 4, 5])
    yield* web.next(is("newMessage", (m) => m.seq === 5))
    yield* phone.next(isEvent("newMessageNotification", (n) => n.message.seq === 5))
    // The trainer answers from the web app on B; the sender on A hears it in its room.
    yield* web.request("sendMessage", { conversationId, content: "from B", clientMessageId: "b-1" })
    expect((yield* sender.next(isEvent("newMessage", (m) => m.seq === 6))).data.content).toBe("from B")
    yield* Effect.sleep("300 millis")
    expect(web.frames.filter((f) => f.event === "newMessage").map((f) => f.data.seq)).toEqual([1, 2, 3, 4, 5, 6])
    // The phone hears of what reached its user, not of what its own web app sent.
    expect(phone.events.filter((e) => e.event === "newMessageNotification").map((e) => e.data.message.seq))
      .toEqual([1, 2, 3, 4, 5])
    expect(sender.events.filter((e) => e.event === "newMessage").map((e) => e.data.seq)).toEqual([1, 2, 3, 4, 5, 6])

    // Typing and receipts cross instances both ways.
    yield* web.send("typing", { conversationId, isTyping: true })
    expect((yield* sender.next(isEvent("userTyping"))).data).toMatchObject({ userId: trainer.id, isTyping: true })
    yield* web.request("markAsRead", { conversationId })
    expect((yield* sender.next(isEvent("messageRead"))).data).toMatchObject({ readerId: trainer.id, upToSeq: 6 })
  }), 60_000)
