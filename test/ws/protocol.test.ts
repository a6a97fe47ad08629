import { describe, expect, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import { ClientEnvelope, envelopeFast, SendMessage, sendMessageFast } from "../../src/ws/Protocol.js"

const conversationId = "3f2c9a4e-8b1d-4c6f-9e2a-7d5b1c0a9e8f"

/** The hand-written check either says "ask the schema" or answers exactly what the schema answers. */
const agrees = <A, I>(schema: Schema.Schema<A, I>, fast: (u: unknown) => A | undefined, inputs: ReadonlyArray<unknown>) => {
  const decode = Schema.decodeUnknownEither(schema)
  let answered = 0
  for (const input of inputs) {
    const quick = fast(input)
    const decoded = decode(input)
    if (quick === undefined) continue
    answered++
    expect(Either.isRight(decoded), JSON.stringify(input)).toBe(true)
    expect(quick, JSON.stringify(input)).toEqual(Either.getOrThrow(decoded))
  }
  return answered
}

describe("the hand-written frame checks", () => {
  it("envelopes: the same answer as the schema, or none", () => {
    const inputs: Array<unknown> = [
      { event: "sendMessage", data: { a: 1 }, id: "1" },
      { event: "typing", data: null },
      { event: "x" },
      { event: "x", id: "" },
      { event: "x", id: "a".repeat(64) },
      { event: "x", id: "a".repeat(65) },
      { event: "x", id: 7 },
      { event: 1, data: {} },
      { data: {} },
      { event: "x", extra: true },
      JSON.parse(`{"event":"x","__proto__":{"y":1}}`),
      [],
      null,
      "text",
      42
    ]
    expect(agrees(ClientEnvelope, envelopeFast, inputs)).toBe(4)
  })

  it("sendMessage: the same answer as the schema for texts, the schema for everything else", () => {
    const valid = { conversationId, content: "  hello  ", clientMessageId: "m-1" }
    const inputs: Array<unknown> = [
      valid,
      { ...valid, type: "text" },
      { ...valid, conversationId: conversationId.toUpperCase() },
      { ...valid, content: "x".repeat(4000) },
      { ...valid, content: ` ${"x".repeat(4000)} ` },
      { ...valid, content: "x".repeat(4001) },
      { ...valid, content: "   " },
      { ...valid, content: "a\u0000b" },
      { ...valid, content: 5 },
      { ...valid, clientMessageId: "" },
      { ...valid, clientMessageId: "c".repeat(64) },
      { ...valid, clientMessageId: "c".repeat(65) },
      { ...valid, clientMessageId: "c\u0000" },
      { ...valid, clientMessageId: undefined },
      { ...valid, conversationId: "not-a-uuid" },
      { ...valid, conversationId: `${conversationId}0` },
      { ...valid, type: "image" },
      { ...valid, type: "system" },
      { ...valid, attachmentId: conversationId },
      { ...valid, extra: 1 },
      { conversationId, clientMessageId: "m-2" },
      { conversationId, content: "no clientMessageId" },
      { conversationId, content: "typed, no clientMessageId", type: "text" },
      { conversationId, content: "x", clientMessageId: null },
      { conversationId, content: "x", clientMessageId: 7 },
      { ...valid, content: "\u00a0é\u2003" },
      null,
      []
    ]
    expect(agrees(SendMessage, sendMessageFast, inputs)).toBe(9)
  })
})
