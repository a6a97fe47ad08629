import { expect, layer } from "@effect/vitest"
import { SqlClient } from "@effect/sql"
import { Effect, Option } from "effect"
import type { ConversationId } from "../../src/domain/chat/Model.js"
import { MessagesRepo, type NewMessage } from "../../src/domain/ports/MessagesRepo.js"
import type { UserId } from "../../src/domain/users/Model.js"
import { pair } from "../support/Chat.js"
import * as TestApp from "../support/TestApp.js"
import { createUser } from "../support/Users.js"

const text = (conversationId: string, senderId: string, receiverId: string | null, content: string): NewMessage => ({
  conversationId: conversationId as ConversationId,
  senderId: senderId as UserId,
  receiverId: receiverId as UserId | null,
  content,
  type: "text",
  clientMessageId: null,
  fileUrl: null,
  fileName: null
})

// The log's own guard (append_messages): no foreign keys to users on this hot path, so the
// statement itself refuses a sender or receiver who is not the conversation's participant.
layer(TestApp.layer(), { excludeTestServices: true })("append_messages", (it) => {
  it.effect("refuses senders and receivers who are not the conversation's participants, using no seq", () =>
    Effect.gen(function*() {
      const repo = yield* MessagesRepo
      const sql = yield* SqlClient.SqlClient
      const { conversationId, trainer, user } = yield* pair
      const stranger = yield* createUser("user")
      const ghost = "00000000-0000-4000-8000-000000000000"
      const refused = [
        text(conversationId, stranger.id, trainer.id, "stranger to trainer"),
        text(conversationId, user.id, stranger.id, "user to stranger"),
        text(conversationId, user.id, user.id, "user to self"),
        text(conversationId, ghost, user.id, "unknown sender"),
        text(conversationId, user.id, null, "text to no one"),
        { ...text(conversationId, trainer.id, user.id, "system to someone"), type: "system" as const }
      ]
      for (const m of refused) expect((yield* repo.append(m))._tag, m.content).toBe("Rejected")
      // The same, batched with good ones in one statement: only those are numbered.
      const mixed = [
        text(conversationId, user.id, trainer.id, "one"),
        ...refused,
        text(conversationId, trainer.id, user.id, "two")
      ]
      const results = yield* repo.appendMany(mixed)
      expect(results.map((r) => r._tag)).toEqual(["Created", ...refused.map(() => "Rejected"), "Created"])
      const rows = yield* sql<{ seq: number; content: string }>`
        SELECT seq, content FROM messages WHERE conversation_id = ${conversationId} ORDER BY seq`
      expect(rows.map((r) => r.seq)).toEqual([1, 2])
      expect(rows.map((r) => r.content).sort()).toEqual(["one", "two"])
      const [conv] = yield* sql<{ lastSeq: number; userUnread: number; trainerUnread: number }>`
        SELECT last_seq, user_unread, trainer_unread FROM conversations WHERE id = ${conversationId}`
      expect(conv).toEqual({ lastSeq: 2, userUnread: 1, trainerUnread: 1 })
    }))

  it.effect("a batch numbers each conversation's messages in arrival order", () =>
    Effect.gen(function*() {
      const repo = yield* MessagesRepo
      const sql = yield* SqlClient.SqlClient
      const [a, b] = yield* Effect.all([pair, pair])
      const batch = Array.from({ length: 60 }, (_, i) => {
        const p = i % 3 === 0 ? b : a
        return i % 2 === 0
          ? text(p.conversationId, p.user.id, p.trainer.id, `m${i}`)
          : text(p.conversationId, p.trainer.id, p.user.id, `m${i}`)
      })
      const results = yield* repo.appendMany(batch)
      expect(results.every((r) => r._tag === "Created")).toBe(true)
      for (const p of [a, b]) {
        const mine = results.flatMap((r, i) =>
          r._tag === "Created" && batch[i]!.conversationId === p.conversationId ? [r.message] : []
        )
        expect(mine.map((m) => m.seq)).toEqual(mine.map((_, i) => i + 1))
        const rows = yield* sql<{ content: string }>`
          SELECT content FROM messages WHERE conversation_id = ${p.conversationId} ORDER BY seq`
        expect(rows.map((r) => r.content)).toEqual(mine.map((m) => m.content))
      }
    }))

  it.effect("stores any text as it was sent: quotes, backslashes, braces, commas, NULL, empty, newlines, emoji", () =>
    Effect.gen(function*() {
      const repo = yield* MessagesRepo
      const sql = yield* SqlClient.SqlClient
      const { conversationId, trainer, user } = yield* pair
      const texts = [
        "plain", "\"quoted\"", "back\\slash", "\\\"", "{a,b}", "x,y", "NULL", "null", "", " spaced ",
        "line\nbreak\ttab", "emoji 🏋️ ünï", "\\N", "}{\"\\,", "'single'"
      ]
      const results = yield* repo.appendMany(texts.map((t) => ({ ...text(conversationId, user.id, trainer.id, t), clientMessageId: t })))
      expect(results.map((r) => r._tag === "Created" ? [r.message.content, r.message.clientMessageId] : r._tag))
        .toEqual(texts.map((t) => [t, t]))
      const rows = yield* sql<{ content: string; clientMessageId: string; lastMessagePreview: string }>`
        SELECT m.content, m.client_message_id, c.last_message_preview FROM messages m
        JOIN conversations c ON c.id = m.conversation_id WHERE m.conversation_id = ${conversationId} ORDER BY m.seq`
      expect(rows.map((r) => r.content)).toEqual(texts)
      expect(rows.map((r) => r.clientMessageId)).toEqual(texts)
      expect(rows[0]!.lastMessagePreview).toBe(texts.at(-1))
    }))

  it.effect("what an append answers is the row it stored, field for field, batched or alone", () =>
    Effect.gen(function*() {
      const repo = yield* MessagesRepo
      const { conversationId, trainer, user } = yield* pair
      const sent: Array<NewMessage> = [
        { ...text(conversationId, user.id, trainer.id, "with an id"), clientMessageId: "c-1" },
        text(conversationId, trainer.id, user.id, "without"),
        { ...text(conversationId, null as unknown as string, null, "closed by an admin"), type: "system" },
        { ...text(conversationId, user.id, trainer.id, "a file"), type: "file", fileUrl: "/files/x", fileName: "x.pdf" }
      ]
      const batched = yield* repo.appendMany(sent)
      const alone = yield* repo.append(text(conversationId, user.id, trainer.id, "alone"))
      for (const answer of [...batched, alone]) {
        if (answer._tag !== "Created") return expect.unreachable(answer._tag)
        const stored = yield* repo.findById(answer.message.id)
        expect(Option.getOrThrow(stored)).toEqual(answer.message)
      }
      expect(batched.map((a) => a._tag === "Created" ? a.message.seq : 0)).toEqual([1, 2, 3, 4])
    }))
})
