import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { pair } from "../support/Chat.js"
import * as TestApp from "../support/TestApp.js"
import { connect, is } from "../support/Ws.js"

layer(TestApp.layer({ WS_JOIN_PER_SECOND: "10000", WS_JOIN_BURST: "10000", WS_SEND_PER_SECOND: "10000", WS_SEND_BURST: "10000" }), { excludeTestServices: true })("joins of one conversation in flight together", (it) => {
  it.scoped("while messages keep coming: the socket gets each message live at most once, and none is missing", () =>
    Effect.gen(function*() {
      const { conversationId, trainer, user } = yield* pair
      const u = yield* connect(user.token)
      const t = yield* connect(trainer.token)
      yield* t.request("joinConversation", { conversationId })
      yield* t.next(is("conversationHistory"))

      // The sender keeps sending while the trainer's socket joins again and again, several joins at once (a
      // client told to resync twice, say), each from where it stands.
      const total = 600
      const sending = Effect.forEach(
        Array.from({ length: total }, (_, i) => i),
        (i) => u.request("sendMessage", { conversationId, content: `m${i}`, clientMessageId: `c${i}` }),
        { concurrency: 32 }
      )
      // Where the socket stands: the last seq up to which it has every message.
      const contiguous = () => {
        const had = new Set<number>()
        for (const frame of t.frames) {
          if (frame.event === "newMessage") had.add(frame.data.seq)
          if (frame.event === "conversationHistory") for (const m of frame.data.messages) had.add(m.seq)
        }
        let seq = 0
        while (had.has(seq + 1)) seq++
        return seq
      }
      const rejoining = Effect.forEach(Array.from({ length: 40 }, (_, i) => i), (i) =>
        Effect.zipRight(
          Effect.sync(() => {
            const sinceSeq = contiguous()
            for (let k = 0; k < 4; k++) {
              t.socket.send(JSON.stringify({ event: "joinConversation", id: `j${i}-${k}`, data: { conversationId, sinceSeq } }))
            }
          }),
          Effect.sleep("5 millis")
        ))
      const [sent] = yield* Effect.all([sending, rejoining], { concurrency: "unbounded" })
      expect(sent.filter((reply) => reply.event !== "ack")).toEqual([])
      // Every join answered, and then a moment for late frames.
      yield* Effect.sleep("100 millis").pipe(
        Effect.repeat({ until: () => t.frames.filter((frame) => frame.event === "ack" && frame.id?.startsWith("j")).length >= 160 }),
        Effect.timeout("15 seconds"),
        Effect.orDie
      )
      yield* Effect.sleep("500 millis")

      const live = t.frames.filter((frame) => frame.event === "newMessage").map((frame) => frame.data.seq as number)
      const twice = live.filter((seq, i) => live.indexOf(seq) !== i)
      expect(twice, "delivered live more than once").toEqual([])
      const had = new Set(live)
      for (const frame of t.frames) {
        if (frame.event === "conversationHistory") for (const m of frame.data.messages) had.add(m.seq)
      }
      expect([...Array(total).keys()].map((i) => i + 1).filter((seq) => !had.has(seq))).toEqual([])
    }))
})
