import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { history, pair, send } from "../support/Chat.js"
import * as TestApp from "../support/TestApp.js"
import { TestServer } from "../support/TestApp.js"
import { assign, createUser, signInAdmin } from "../support/Users.js"

const seqsOf = (messages: ReadonlyArray<{ readonly seq: number }>) => messages.map((m) => m.seq)
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

layer(TestApp.layer(), { excludeTestServices: true })("chat", (it) => {
  it.effect("open: 201 once, 200 after, from either side; the view carries both profiles", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const { conversationId, trainer, user } = yield* pair
      const again = yield* server.request("POST", "/chat/conversations", { token: trainer.token, body: { participantId: user.id } })
      expect(again.status).toBe(200)
      expect(again.body.id).toBe(conversationId)
      expect(again.body).toMatchObject({
        userId: user.id,
        trainerId: trainer.id,
        status: "active",
        lastSeq: 0,
        unreadCount: 0,
        readSeq: 0,
        counterpart: { id: user.id, role: "user" },
        trainer: { id: trainer.id, role: "trainer" }
      })
      expect(JSON.stringify(again.body)).not.toMatch(/email|password|Unread|ReadSeq/)
    }))

  it.effect("only assigned pairs may open a conversation; admins open one for an assigned pair", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const [trainer, otherTrainer, user, admin] = yield* Effect.all([
        createUser("trainer"),
        createUser("trainer"),
        createUser("user"),
        signInAdmin
      ])
      yield* assign(user.id, trainer.id)
      const open = (token: string, body: unknown) => server.request("POST", "/chat/conversations", { token, body })

      expect((yield* open(user.token, { participantId: otherTrainer.id })).status).toBe(403)
      expect((yield* open(otherTrainer.token, { participantId: user.id })).status).toBe(403)
      expect((yield* open(user.token, { participantId: user.id })).status).toBe(403)
      expect((yield* open(user.token, { participantId: crypto.randomUUID() })).body._tag).toBe("NotAssigned")
      expect((yield* open(admin.token, { participantId: user.id })).status).toBe(403)
      expect((yield* open(user.token, { userId: user.id, trainerId: trainer.id })).status).toBe(403)
      expect((yield* open(admin.token, { userId: user.id, trainerId: otherTrainer.id })).status).toBe(403)
      const byAdmin = yield* open(admin.token, { userId: user.id, trainerId: trainer.id })
      expect(byAdmin.status).toBe(201)
      expect(byAdmin.body.counterpart).toBeNull()
      const byUser = yield* open(user.token, { participantId: trainer.id })
      expect(byUser.status).toBe(200)
      expect(byUser.body.id).toBe(byAdmin.body.id)
      expect((yield* open(user.token, { participantId: "not-a-uuid" })).status).toBe(400)
      expect((yield* open(user.token, { participantId: trainer.id, extra: 1 })).status).toBe(400)
    }))

  it.effect("100+ concurrent sends are numbered exactly 1..N, and the preview follows the last", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const { conversationId, trainer, user } = yield* pair
      const n = 120
      const replies = yield* Effect.all(
        range(1, n).map((i) => send(i % 2 === 0 ? user.token : trainer.token, conversationId, `message ${i}`)),
        { concurrency: "unbounded" }
      )
      expect(replies.map((r) => r.status)).toEqual(Array(n).fill(201))
      expect(replies.map((r) => r.body.seq).sort((a, b) => a - b)).toEqual(range(1, n))

      const all = [
        ...(yield* history(user.token, conversationId, "?afterSeq=0&limit=100")).body.messages,
        ...(yield* history(user.token, conversationId, "?afterSeq=100&limit=100")).body.messages
      ]
      expect(seqsOf(all)).toEqual(range(1, n))
      const last = all[n - 1]
      const conversation = yield* server.request("GET", `/chat/conversations/${conversationId}`, { token: user.token })
      expect(conversation.body.lastSeq).toBe(n)
      expect(conversation.body.lastMessagePreview).toBe(last.content)
      expect(conversation.body.lastMessageAt).toBe(last.createdAt)
      expect(conversation.body.unreadCount).toBe(n / 2)
    }))

  it.effect("concurrent sends across many conversations (batched together) stay dense per conversation, with right counters", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const pairs = yield* Effect.all(Array.from({ length: 6 }, () => pair), { concurrency: 3 })
      const perConversation = 25
      const jobs = pairs.flatMap((p) =>
        range(1, perConversation).map((i) => ({ p, i, token: i % 5 === 0 ? p.trainer.token : p.user.token }))
      )
      const replies = yield* Effect.all(
        jobs.map(({ i, p, token }) => send(token, p.conversationId, `c${i}`, i % 3 === 0 ? `k${i}` : undefined)),
        { concurrency: "unbounded" }
      )
      expect(replies.every((r) => r.status === 201)).toBe(true)
      for (const p of pairs) {
        const stored = (yield* history(p.user.token, p.conversationId, "?limit=100")).body.messages
        expect(seqsOf(stored)).toEqual(range(1, perConversation))
        const view = (yield* server.request("GET", `/chat/conversations/${p.conversationId}`, { token: p.trainer.token })).body
        expect(view.lastSeq).toBe(perConversation)
        expect(view.lastMessagePreview).toBe(stored.at(-1).content)
        expect(view.unreadCount).toBe(perConversation - perConversation / 5)
        const userView = (yield* server.request("GET", `/chat/conversations/${p.conversationId}`, { token: p.user.token })).body
        expect(userView.unreadCount).toBe(perConversation / 5)
      }
    }))

  it.effect("a retried clientMessageId gets the original, sequentially and concurrently, never a duplicate", () =>
    Effect.gen(function*() {
      const { conversationId, trainer, user } = yield* pair
      const first = yield* send(user.token, conversationId, "hello", "c-1")
      expect(first.status).toBe(201)
      expect(first.body).toMatchObject({ seq: 1, clientMessageId: "c-1", senderId: user.id, receiverId: trainer.id, type: "text", isRead: false, readAt: null, fileUrl: null, fileName: null })
      const retry = yield* send(user.token, conversationId, "hello", "c-1")
      expect(retry.status).toBe(200)
      expect(retry.body).toEqual(first.body)

      const racing = yield* Effect.all(
        range(1, 20).map(() => send(user.token, conversationId, "race", "c-2")),
        { concurrency: "unbounded" }
      )
      expect(racing.filter((r) => r.status === 201)).toHaveLength(1)
      expect(racing.filter((r) => r.status === 200)).toHaveLength(19)
      expect(new Set(racing.map((r) => r.body.id)).size).toBe(1)
      expect(racing[0]!.body.seq).toBe(2)

      // The same clientMessageId from the other side is another message.
      const theirs = yield* send(trainer.token, conversationId, "hi", "c-1")
      expect(theirs.status).toBe(201)
      expect(theirs.body.seq).toBe(3)
      const next = yield* send(user.token, conversationId, "after")
      expect(next.body.seq).toBe(4)
    }))

  it.effect("history pages by seq: newest page, beforeSeq, afterSeq catch-up, hasMore", () =>
    Effect.gen(function*() {
      const { conversationId, user } = yield* pair
      for (const i of range(1, 12)) yield* send(user.token, conversationId, `m${i}`)
      const latest = (yield* history(user.token, conversationId, "?limit=5")).body
      expect(seqsOf(latest.messages)).toEqual([8, 9, 10, 11, 12])
      expect(latest.hasMore).toBe(true)
      const before = (yield* history(user.token, conversationId, "?limit=5&beforeSeq=8")).body
      expect(seqsOf(before.messages)).toEqual([3, 4, 5, 6, 7])
      const oldest = (yield* history(user.token, conversationId, "?limit=5&beforeSeq=3")).body
      expect(seqsOf(oldest.messages)).toEqual([1, 2])
      expect(oldest.hasMore).toBe(false)
      const missed = (yield* history(user.token, conversationId, "?afterSeq=9")).body
      expect(seqsOf(missed.messages)).toEqual([10, 11, 12])
      expect(missed.hasMore).toBe(false)
      const window = (yield* history(user.token, conversationId, "?afterSeq=2&beforeSeq=6")).body
      expect(seqsOf(window.messages)).toEqual([3, 4, 5])
      const defaults = (yield* history(user.token, conversationId)).body
      expect(seqsOf(defaults.messages)).toEqual(range(1, 12))
      expect(defaults.messages[0]).toMatchObject({ content: "m1", conversationId })
    }))

  it.effect("unread counts follow sends and reads; per-message and watermark reads agree", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const { conversationId, trainer, user } = yield* pair
      const sent = []
      for (const i of range(1, 5)) sent.push((yield* send(user.token, conversationId, `u${i}`)).body)
      yield* send(trainer.token, conversationId, "t1")
      const unread = (token: string) => server.request("GET", "/chat/messages/unread/count", { token })

      expect((yield* unread(trainer.token)).body).toEqual({ total: 5, byConversation: [{ conversationId, count: 5 }] })
      expect((yield* unread(user.token)).body).toEqual({ total: 1, byConversation: [{ conversationId, count: 1 }] })

      // One message, by its receiver; again changes nothing.
      const one = yield* server.request("PUT", `/chat/messages/${sent[1].id}/read`, { token: trainer.token })
      expect(one.status).toBe(200)
      expect(one.body.isRead).toBe(true)
      expect(one.body.readAt).not.toBeNull()
      const twice = yield* server.request("PUT", `/chat/messages/${sent[1].id}/read`, { token: trainer.token })
      expect(twice.body).toEqual(one.body)
      expect((yield* unread(trainer.token)).body.total).toBe(4)
      // The sender cannot mark their own message read.
      expect((yield* server.request("PUT", `/chat/messages/${sent[0].id}/read`, { token: user.token })).status).toBe(403)

      const upTo3 = yield* server.request("PUT", `/chat/conversations/${conversationId}/read`, { token: trainer.token, body: { upToSeq: 3 } })
      // seq 2 was read on its own: 1 and 3 are what changes
      expect(upTo3.body).toEqual({ changed: 2, readSeq: 3 })
      expect((yield* unread(trainer.token)).body.total).toBe(2)
      const rest = yield* server.request("PUT", `/chat/conversations/${conversationId}/read`, { token: trainer.token, body: {} })
      expect(rest.body).toEqual({ changed: 2, readSeq: 6 })
      expect((yield* unread(trainer.token)).body).toEqual({ total: 0, byConversation: [] })
      const nothing = yield* server.request("PUT", `/chat/conversations/${conversationId}/read`, { token: trainer.token, body: {} })
      expect(nothing.body).toEqual({ changed: 0, readSeq: 6 })

      const messages = (yield* history(trainer.token, conversationId)).body.messages
      expect(messages.map((m: { isRead: boolean }) => m.isRead)).toEqual([true, true, true, true, true, false])
      expect((yield* unread(user.token)).body.total).toBe(1)

      const list = yield* server.request("GET", "/chat/conversations", { token: trainer.token })
      expect(list.body.items.find((c: { id: string }) => c.id === conversationId)).toMatchObject({ unreadCount: 0, readSeq: 6 })
    }))

  it.effect("the conversation list is the caller's, most recent first, with counterparts", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const trainer = yield* createUser("trainer")
      const users = yield* Effect.all([createUser("user"), createUser("user"), createUser("user")])
      const ids: Array<string> = []
      for (const user of users) {
        yield* assign(user.id, trainer.id)
        const opened = yield* server.request("POST", "/chat/conversations", { token: user.token, body: { participantId: trainer.id } })
        ids.push(opened.body.id)
      }
      yield* send(users[0]!.token, ids[0]!, "first")
      yield* send(users[2]!.token, ids[2]!, "second")
      const list = yield* server.request("GET", "/chat/conversations?limit=2", { token: trainer.token })
      expect(list.status).toBe(200)
      expect(list.body.total).toBe(3)
      expect(list.body.items.map((c: { id: string }) => c.id)).toEqual([ids[2], ids[0]])
      expect(list.body.items[0]).toMatchObject({ counterpart: { id: users[2]!.id }, unreadCount: 1, lastMessagePreview: "second" })
      const rest = yield* server.request("GET", "/chat/conversations?limit=2&offset=2", { token: trainer.token })
      expect(rest.body.items.map((c: { id: string }) => c.id)).toEqual([ids[1]])
      const mine = yield* server.request("GET", "/chat/conversations", { token: users[1]!.token })
      expect(mine.body.items.map((c: { id: string }) => c.id)).toEqual([ids[1]])
    }))

  it.effect("closing leaves a system message, blocks sends with a code, and is audited", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const admin = yield* signInAdmin
      const { conversationId, trainer, user } = yield* pair
      yield* send(user.token, conversationId, "before")
      const closed = yield* server.request("PUT", `/chat/admin/conversations/${conversationId}/close`, {
        token: admin.token,
        body: { reason: "  abusive language " }
      })
      expect(closed.status).toBe(200)
      expect(closed.body).toMatchObject({ id: conversationId, status: "closed", closedReason: "abusive language", lastSeq: 2 })

      const blocked = yield* send(trainer.token, conversationId, "after")
      expect(blocked.status).toBe(409)
      expect(blocked.body).toMatchObject({ _tag: "ConversationNotActive", status: "closed" })
      const messages = (yield* history(user.token, conversationId)).body.messages
      expect(messages).toHaveLength(2)
      expect(messages[1]).toMatchObject({ seq: 2, type: "system", senderId: admin.id, receiverId: null, content: "Conversation closed by an admin: abusive language" })

      // Closing again changes nothing and adds no message.
      const again = yield* server.request("PUT", `/chat/admin/conversations/${conversationId}/close`, { token: admin.token, body: {} })
      expect(again.status).toBe(200)
      expect(again.body.lastSeq).toBe(2)
      // Unread counts are not disturbed by the system message.
      expect((yield* server.request("GET", "/chat/messages/unread/count", { token: trainer.token })).body.total).toBe(1)

      const read = yield* history(admin.token, conversationId, "?limit=10")
      expect(read.status).toBe(200)
      const viewed = yield* server.request("GET", `/chat/conversations/${conversationId}`, { token: admin.token })
      expect(viewed.status).toBe(200)
      expect(viewed.body.counterpart).toBeNull()

      const audit = yield* server.request("GET", "/chat/admin/audit?limit=100", { token: admin.token })
      expect(audit.status).toBe(200)
      const mine = audit.body.items.filter((e: { targetId: string }) => e.targetId === conversationId)
      expect(mine.map((e: { action: string }) => e.action)).toEqual([
        "conversation.view",
        "conversation.messages.view",
        "conversation.close",
        "conversation.close"
      ])
      expect(mine[1]).toMatchObject({ actorId: admin.id, details: { limit: 10 } })
      // Newest first: the second close found it closed already.
      expect(mine[2].details).toEqual({ alreadyClosed: true })
      expect(mine[3].details).toEqual({ reason: "abusive language" })
    }))

  it.effect("reassignment archives the old conversation (readable, no sends) and the new pair can talk", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const { conversationId, trainer, user } = yield* pair
      yield* send(user.token, conversationId, "hello old trainer")
      const newTrainer = yield* createUser("trainer")
      yield* assign(user.id, newTrainer.id)

      const old = yield* server.request("GET", `/chat/conversations/${conversationId}`, { token: trainer.token })
      expect(old.body.status).toBe("archived")
      expect((yield* history(trainer.token, conversationId)).body.messages).toHaveLength(1)
      const blocked = yield* send(user.token, conversationId, "still there?")
      expect(blocked.status).toBe(409)
      expect(blocked.body).toMatchObject({ _tag: "ConversationNotActive", status: "archived" })
      expect((yield* server.request("POST", "/chat/conversations", { token: trainer.token, body: { participantId: user.id } })).status).toBe(403)

      const opened = yield* server.request("POST", "/chat/conversations", { token: user.token, body: { participantId: newTrainer.id } })
      expect(opened.status).toBe(201)
      expect((yield* send(user.token, opened.body.id, "hello new trainer")).body.seq).toBe(1)

      // Assigned back, the old pair picks up where it left off.
      yield* assign(user.id, trainer.id)
      const back = yield* send(user.token, conversationId, "back again")
      expect(back.status).toBe(201)
      expect(back.body.seq).toBe(2)
      const newOne = yield* server.request("GET", `/chat/conversations/${opened.body.id}`, { token: newTrainer.token })
      expect(newOne.body.status).toBe("archived")
    }))

  it.effect("the admin list filters by status, user and trainer, and is audited", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const admin = yield* signInAdmin
      const a = yield* pair
      const b = yield* pair
      yield* server.request("PUT", `/chat/admin/conversations/${b.conversationId}/close`, { token: admin.token, body: {} })
      const byTrainer = yield* server.request("GET", `/chat/admin/conversations?trainerId=${a.trainer.id}`, { token: admin.token })
      expect(byTrainer.status).toBe(200)
      expect(byTrainer.body.items.map((c: { id: string }) => c.id)).toEqual([a.conversationId])
      const closed = yield* server.request("GET", `/chat/admin/conversations?status=closed&userId=${b.user.id}`, { token: admin.token })
      expect(closed.body.items.map((c: { id: string }) => c.id)).toEqual([b.conversationId])
      expect(closed.body.total).toBe(1)
      const none = yield* server.request("GET", `/chat/admin/conversations?status=archived&userId=${b.user.id}`, { token: admin.token })
      expect(none.body).toMatchObject({ items: [], total: 0 })
      const audit = yield* server.request("GET", "/chat/admin/audit?limit=5", { token: admin.token })
      expect(audit.body.items[0]).toMatchObject({ action: "conversations.list", targetId: null, details: { status: "archived", userId: b.user.id } })
    }))

  it.effect("bad input gets 400/404 with a code, and nothing is written", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const { conversationId, user } = yield* pair
      const post = (body: unknown) => server.request("POST", "/chat/messages", { token: user.token, body })
      const bad: ReadonlyArray<readonly [unknown, string]> = [
        [{ conversationId, content: "" }, "content"],
        [{ conversationId, content: "   " }, "content"],
        [{ conversationId, content: "x".repeat(4001) }, "content"],
        [{ conversationId, content: 42 }, "content"],
        [{ conversationId, content: "a\u0000b" }, "content"],
        [{ conversationId, content: "hi", clientMessageId: "a\u0000" }, "clientMessageId"],
        [{ conversationId, content: "hi", type: "system" }, "type"],
        [{ conversationId, content: "hi", type: "image" }, "attachmentId"],
        [{ conversationId, type: "text" }, "content"],
        [{ conversationId, content: "hi", attachmentId: crypto.randomUUID() }, "attachmentId"],
        [{ conversationId, content: "hi", clientMessageId: "x".repeat(65) }, "clientMessageId"],
        [{ conversationId, content: "hi", clientMessageId: "" }, "clientMessageId"],
        [{ conversationId: "nope", content: "hi" }, "conversationId"],
        [{ content: "hi" }, "conversationId"],
        [{ conversationId, content: "hi", senderId: user.id }, "senderId"]
      ]
      for (const [body, field] of bad) {
        const reply = yield* post(body)
        expect(reply.status, JSON.stringify(body).slice(0, 80)).toBe(400)
        expect(reply.body._tag).toBe("HttpApiDecodeError")
        expect(reply.body.issues.map((i: { path: ReadonlyArray<string> }) => i.path[0])).toContain(field)
      }
      expect((yield* post({ conversationId: crypto.randomUUID(), content: "hi" })).body._tag).toBe("ConversationNotFound")
      expect((yield* post({ conversationId: crypto.randomUUID(), content: "hi" })).status).toBe(404)
      const trimmed = yield* post({ conversationId, content: `  ${"y".repeat(4000)}  ` })
      expect(trimmed.status).toBe(201)
      expect(trimmed.body.content).toHaveLength(4000)
      expect(trimmed.body.seq).toBe(1)

      for (const query of ["?limit=0", "?limit=101", "?limit=-1", "?limit=abc", "?limit=1e9", "?afterSeq=-1", "?beforeSeq=x", "?afterSeq=99999999999", "?other=1"]) {
        const reply = yield* history(user.token, conversationId, query)
        expect(reply.status, query).toBe(400)
      }
      expect((yield* history(user.token, "not-a-uuid")).status).toBe(400)
      expect((yield* history(user.token, crypto.randomUUID())).status).toBe(404)
      expect((yield* server.request("PUT", `/chat/messages/${crypto.randomUUID()}/read`, { token: user.token })).body._tag).toBe("MessageNotFound")
      expect((yield* server.request("PUT", "/chat/messages/123/read", { token: user.token })).status).toBe(400)
      const badRead = yield* server.request("PUT", `/chat/conversations/${conversationId}/read`, { token: user.token, body: { upToSeq: -3 } })
      expect(badRead.status).toBe(400)
      expect((yield* server.request("GET", "/chat/admin/conversations?status=open", { token: (yield* signInAdmin).token })).status).toBe(400)
      expect((yield* history(user.token, conversationId)).body.messages).toHaveLength(1)
    }))
})
