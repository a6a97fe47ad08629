import { expect, layer } from "@effect/vitest"
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import type { ConversationId } from "../../src/domain/chat/Model.js"
import { MessagesRepo } from "../../src/domain/ports/MessagesRepo.js"
import { HistoryJson } from "../../src/infra/sql/HistoryJson.js"
import { encodeMessage } from "../../src/infra/wire/MessageJson.js"
import { pair, send } from "../support/Chat.js"
import * as TestApp from "../support/TestApp.js"
import { TestServer } from "../support/TestApp.js"
import { signInAdmin } from "../support/Users.js"

layer(TestApp.layer(), { excludeTestServices: true })("history pages as JSON text", (it) => {
  it.effect("each message of a page is exactly the text JSON.stringify(encodeMessage(m)) writes", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const sql = yield* SqlClient.SqlClient
      const repo = yield* MessagesRepo
      const pages = yield* HistoryJson
      const { conversationId, trainer, user } = yield* pair
      const contents = [
        `He said "hi" \\ back/slash\ttab\nnew line\r\n`,
        "controls \u0001 \u0008 \u000b \u000c \u001f \u007f end",
        "Ünïcödé 🎉 \u2028 \u2029 ﷽ 中文",
        "</script><!-- -->&amp;",
        "x".repeat(4000)
      ]
      for (const [i, content] of contents.entries()) {
        const reply = yield* send(i % 2 === 0 ? user.token : trainer.token, conversationId, content, `j${i}`)
        expect(reply.status).toBe(201)
      }
      // Read receipts, microseconds that the driver's Date cuts off, and a system message with no sender.
      const first = (yield* repo.history(conversationId as ConversationId, { limit: 1, afterSeq: 0 as never })).messages[0]!
      yield* server.request("PUT", `/chat/messages/${first.id}/read`, { token: trainer.token })
      yield* sql`UPDATE messages SET created_at = '2026-03-04 05:06:07.123999+00', updated_at = '1999-12-31 23:59:59.999999+00'
                 WHERE conversation_id = ${conversationId} AND seq = 2`
      yield* sql`UPDATE messages SET created_at = '2030-01-01 00:00:00+00' WHERE conversation_id = ${conversationId} AND seq = 3`
      const admin = yield* signInAdmin
      yield* server.request("PUT", `/chat/admin/conversations/${conversationId}/close`, { token: admin.token, body: { reason: "done \"now\"" } })

      const queries = [{ limit: 50 }, { limit: 2 }, { limit: 3, afterSeq: 1 }, { limit: 2, beforeSeq: 5 }, { limit: 10, afterSeq: 99 }]
      for (const query of queries) {
        const q = query as Parameters<typeof repo.history>[1]
        const objects = yield* repo.history(conversationId as ConversationId, q)
        const texts = yield* pages.page(conversationId as ConversationId, q)
        expect(texts.hasMore, JSON.stringify(query)).toBe(objects.hasMore)
        expect(texts.messages, JSON.stringify(query)).toEqual(objects.messages.map((m) => JSON.stringify(encodeMessage(m))))
      }
      const all = yield* pages.page(conversationId as ConversationId, { limit: 50 })
      expect(all.messages).toHaveLength(contents.length + 1)
      expect(all.messages.map((m) => JSON.parse(m).type).at(-1)).toBe("system")
      expect(JSON.parse(all.messages[1]!).createdAt).toBe("2026-03-04T05:06:07.123Z")
      expect(JSON.parse(all.messages[1]!).updatedAt).toBe("1999-12-31T23:59:59.999Z")
      expect(JSON.parse(all.messages[0]!).readAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
    }))
})
