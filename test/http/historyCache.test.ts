import { expect, layer } from "@effect/vitest"
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { history, pair, send } from "../support/Chat.js"
import * as TestApp from "../support/TestApp.js"
import { TestServer } from "../support/TestApp.js"
import { signInAdmin } from "../support/Users.js"

const contents = (reply: { body: any }) => (reply.body.messages as Array<{ content: string }>).map((m) => m.content)

// The newest page is served from memory while the log's version holds. To see a cached page, the test
// changes a row behind the app's back (which no real writer does): only a change through the app may
// end the cached page's life, and every such change must.
layer(TestApp.layer(), { excludeTestServices: true })("newest-page cache", (it) => {
  it.effect("serves the newest page from memory until a send, a read receipt or a close changes the log", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const sql = yield* SqlClient.SqlClient
      const { conversationId, trainer, user } = yield* pair
      for (let i = 1; i <= 3; i++) expect((yield* send(user.token, conversationId, `m${i}`)).status).toBe(201)
      expect(contents(yield* history(user.token, conversationId))).toEqual(["m1", "m2", "m3"])
      const behindTheBack = sql`UPDATE messages SET content = content || '!' WHERE conversation_id = ${conversationId}`

      // Cached: a change the app did not make is not seen (bounded pages and other readers' pages neither hit).
      yield* behindTheBack
      expect(contents(yield* history(user.token, conversationId))).toEqual(["m1", "m2", "m3"])
      expect(contents(yield* history(trainer.token, conversationId))).toEqual(["m1", "m2", "m3"])
      expect(contents(yield* history(user.token, conversationId, "?afterSeq=0"))).toEqual(["m1!", "m2!", "m3!"])

      // A send: the next newest page is read again.
      expect((yield* send(trainer.token, conversationId, "m4")).status).toBe(201)
      expect(contents(yield* history(user.token, conversationId))).toEqual(["m1!", "m2!", "m3!", "m4"])

      // Shorter pages are cut from the kept one; a longer one than kept is read again.
      const short = yield* history(user.token, conversationId, "?limit=2")
      expect(contents(short)).toEqual(["m3!", "m4"])
      expect(short.body.hasMore).toBe(true)
      yield* behindTheBack
      const all = yield* history(user.token, conversationId, "?limit=100")
      expect(contents(all)).toEqual(["m1!", "m2!", "m3!", "m4"])
      expect(all.body.hasMore).toBe(false)

      // One message read by its receiver.
      const m4 = (all.body.messages as Array<{ id: string; seq: number }>).at(-1)!
      expect((yield* server.request("PUT", `/chat/messages/${m4.id}/read`, { token: user.token })).status).toBe(200)
      const afterRead = yield* history(trainer.token, conversationId)
      expect(contents(afterRead)).toEqual(["m1!!", "m2!!", "m3!!", "m4!"])
      expect(afterRead.body.messages.at(-1).isRead).toBe(true)
      expect(afterRead.body.messages.at(-1).readAt).not.toBeNull()

      // The whole conversation read.
      yield* behindTheBack
      expect(afterRead.body.messages[0].isRead).toBe(false)
      const marked = yield* server.request("PUT", `/chat/conversations/${conversationId}/read`, { token: trainer.token, body: {} })
      expect(marked.body.changed).toBe(3)
      const afterMark = yield* history(user.token, conversationId)
      expect(afterMark.body.messages.map((m: { isRead: boolean }) => m.isRead)).toEqual([true, true, true, true])
      expect(contents(afterMark)).toEqual(["m1!!!", "m2!!!", "m3!!!", "m4!!"])

      // An admin's close leaves a system message.
      const admin = yield* signInAdmin
      yield* behindTheBack
      expect((yield* server.request("PUT", `/chat/admin/conversations/${conversationId}/close`, { token: admin.token, body: {} })).status)
        .toBe(200)
      const afterClose = yield* history(user.token, conversationId)
      expect(afterClose.body.messages.at(-1).type).toBe("system")
      expect(contents(afterClose).slice(0, 4)).toEqual(["m1!!!!", "m2!!!!", "m3!!!!", "m4!!!"])

      // Retries and refused sends change nothing, so the page stays cached.
      yield* behindTheBack
      expect((yield* send(user.token, conversationId, "late")).status).toBe(409)
      expect(contents(yield* history(user.token, conversationId)).slice(0, 4)).toEqual(["m1!!!!", "m2!!!!", "m3!!!!", "m4!!!"])
    }))

  it.effect("an attachment message and an idempotent retry", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const { conversationId, trainer, user } = yield* pair
      expect((yield* send(user.token, conversationId, "first", "c-1")).status).toBe(201)
      expect(contents(yield* history(trainer.token, conversationId))).toEqual(["first"])
      expect((yield* send(user.token, conversationId, "first", "c-1")).status).toBe(200)
      const upload = yield* server.request("POST", "/chat/attachments?fileName=notes.txt", {
        token: user.token,
        raw: "some notes",
        headers: { "content-type": "text/plain" }
      })
      expect(upload.status).toBe(201)
      const sent = yield* server.request("POST", "/chat/messages", {
        token: user.token,
        body: { conversationId, type: "file", attachmentId: upload.body.id }
      })
      expect(sent.status).toBe(201)
      const page = yield* history(trainer.token, conversationId)
      expect(page.body.messages.map((m: { type: string }) => m.type)).toEqual(["text", "file"])
    }))
})
