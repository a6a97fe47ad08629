import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import type { ConversationId } from "../../src/domain/chat/Model.js"
import { MessagesRepo } from "../../src/domain/ports/MessagesRepo.js"
import type { UserId } from "../../src/domain/users/Model.js"
import { pair, send } from "../support/Chat.js"
import * as TestApp from "../support/TestApp.js"
import { connect, is } from "../support/Ws.js"

layer(TestApp.layer(), { excludeTestServices: true })("a retried send", (it) => {
  it.scoped("whose first attempt was committed but never announced (its instance died) reaches the room once", () =>
    Effect.gen(function*() {
      const { conversationId, trainer, user } = yield* pair
      const t = yield* connect(trainer.token)
      yield* t.request("joinConversation", { conversationId })
      yield* t.next(is("conversationHistory"))

      // The first attempt: stored, as an instance does it, and then that instance is gone before its publish.
      const repo = yield* MessagesRepo
      const first = yield* repo.append({
        conversationId: conversationId as ConversationId,
        senderId: user.id as UserId,
        receiverId: trainer.id as UserId,
        content: "lost on the way",
        type: "text",
        clientMessageId: "retry-1",
        fileUrl: null,
        fileName: null
      })
      expect(first._tag).toBe("Created")

      // The phone never got an ack and retries: the original answers, and the room finally hears of it.
      const retry = yield* send(user.token, conversationId, "lost on the way", "retry-1")
      expect(retry.status).toBe(200)
      const live = yield* t.next(is("newMessage"), 5_000)
      expect(live.data).toMatchObject({ seq: 1, content: "lost on the way", clientMessageId: "retry-1" })

      // A second retry, and a live send after it: the room gets the next message, not the old one again.
      expect((yield* send(user.token, conversationId, "lost on the way", "retry-1")).status).toBe(200)
      expect((yield* send(user.token, conversationId, "next", "after-1")).status).toBe(201)
      const after = yield* t.next(is("newMessage"), 5_000)
      expect(after.data).toMatchObject({ seq: 2, content: "next" })
      expect(t.frames.filter((frame) => frame.event === "newMessage").map((frame) => frame.data.seq)).toEqual([1, 2])
    }))
})
