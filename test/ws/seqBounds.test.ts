import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { pair, send } from "../support/Chat.js"
import * as TestApp from "../support/TestApp.js"
import { connect } from "../support/Ws.js"

const overInt4 = 2_147_483_648

layer(TestApp.layer(), { excludeTestServices: true })("seq bounds over WebSocket", (it) => {
  it.scoped("a sinceSeq or upToSeq above int4 is an InvalidData error frame naming the field, not Internal", () =>
    Effect.gen(function*() {
      const { conversationId, user } = yield* pair
      yield* send(user.token, conversationId, "hello")
      const socket = yield* connect(user.token)

      const join = yield* socket.request("joinConversation", { conversationId, sinceSeq: overInt4 })
      expect(join.event).toBe("error")
      expect(join.data.code).toBe("InvalidData")
      expect(join.data.message).toContain("sinceSeq")
      expect(join.data.message).not.toContain(String(overInt4))

      const read = yield* socket.request("markAsRead", { conversationId, upToSeq: overInt4 })
      expect(read.event).toBe("error")
      expect(read.data.code).toBe("InvalidData")
      expect(read.data.message).toContain("upToSeq")

      // The largest one is fine, and the socket still works.
      const largest = yield* socket.request("joinConversation", { conversationId, sinceSeq: overInt4 - 1 })
      expect(largest.event).toBe("ack")
    }))
})
