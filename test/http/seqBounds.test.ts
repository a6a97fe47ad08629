import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { history, pair, send } from "../support/Chat.js"
import * as TestApp from "../support/TestApp.js"
import { TestServer } from "../support/TestApp.js"

const overInt4 = 2_147_483_648

layer(TestApp.layer(), { excludeTestServices: true })("seq bounds over REST", (it) => {
  it.scoped("afterSeq, beforeSeq and upToSeq above int4 are a 400 naming the field; the largest int4 is accepted", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const { conversationId, user } = yield* pair
      yield* send(user.token, conversationId, "hello")

      for (const name of ["afterSeq", "beforeSeq"]) {
        const over = yield* history(user.token, conversationId, `?${name}=${overInt4}`)
        expect(over.status).toBe(400)
        expect(JSON.stringify(over.body)).toContain(name)
        expect((yield* history(user.token, conversationId, `?${name}=${overInt4 - 1}`)).status).toBe(200)
      }

      const read = yield* server.request("PUT", `/chat/conversations/${conversationId}/read`, {
        token: user.token,
        body: { upToSeq: overInt4 }
      })
      expect(read.status).toBe(400)
      expect(JSON.stringify(read.body)).toContain("upToSeq")
      expect(JSON.stringify(read.body)).not.toContain(String(overInt4))
      const largest = yield* server.request("PUT", `/chat/conversations/${conversationId}/read`, {
        token: user.token,
        body: { upToSeq: overInt4 - 1 }
      })
      expect(largest.status).toBe(200)
    }))
})
