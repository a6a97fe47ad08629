import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { history, pair, send } from "../support/Chat.js"
import * as TestApp from "../support/TestApp.js"
import { TestServer } from "../support/TestApp.js"
import { signInAdmin, uniqueEmail } from "../support/Users.js"

// A lone surrogate (valid in a JS string and in JSON text, not in UTF-8 nor in a jsonb value) is
// replaced by U+FFFD wherever free text comes in, so that what is answered is what is stored.
const lone = "\uD800"
const replaced = "\uFFFD"

layer(TestApp.layer(), { excludeTestServices: true })("lone surrogates in free text", (it) => {
  it.scoped("an admin's close reason with a lone surrogate is stored, audited and announced with U+FFFD, not a 500", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const admin = yield* signInAdmin
      const { conversationId, user } = yield* pair

      const closed = yield* server.request("PUT", `/chat/admin/conversations/${conversationId}/close`, {
        token: admin.token,
        body: { reason: `spam ${lone} here` }
      })
      expect(closed.status).toBe(200)
      expect(closed.body.closedReason).toBe(`spam ${replaced} here`)

      const audit = yield* server.request("GET", "/chat/admin/audit", { token: admin.token })
      expect(audit.status).toBe(200)
      const entry = audit.body.items.find((e: any) => e.action === "conversation.close" && e.targetId === conversationId)
      expect(entry.details).toEqual({ reason: `spam ${replaced} here` })

      const page = yield* history(user.token, conversationId)
      expect(page.body.messages.at(-1).content).toBe(`Conversation closed by an admin: spam ${replaced} here`)
    }))

  it.scoped("message content and clientMessageId, names and emails: the answer and the stored value agree", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const { conversationId, user } = yield* pair

      const sent = yield* send(user.token, conversationId, `hi ${lone}`, `id-${lone}`)
      expect(sent.status).toBe(201)
      expect(sent.body.content).toBe(`hi ${replaced}`)
      expect(sent.body.clientMessageId).toBe(`id-${replaced}`)
      const page = yield* history(user.token, conversationId)
      expect(page.body.messages.at(-1)).toMatchObject({ content: `hi ${replaced}`, clientMessageId: `id-${replaced}` })
      // A retry with the same (unreplaced) id is recognised as the same send.
      const retry = yield* send(user.token, conversationId, `hi ${lone}`, `id-${lone}`)
      expect(retry.status).toBe(200)
      expect(retry.body.id).toBe(sent.body.id)

      const registered = yield* server.request("POST", "/auth/register", {
        body: { email: uniqueEmail("lone"), password: "password-123", firstName: `A${lone}`, lastName: "B" }
      })
      expect(registered.status).toBe(201)
      expect(registered.body.user.firstName).toBe(`A${replaced}`)
      const renamed = yield* server.request("PATCH", `/users/${registered.body.user.id}`, {
        token: registered.body.accessToken,
        body: { lastName: `C${lone}` }
      })
      expect(renamed.status).toBe(200)
      expect(renamed.body.lastName).toBe(`C${replaced}`)
    }))
})
