import { describe, expect, it } from "@effect/vitest"
import { DateTime, Equal, Schema } from "effect"
import { ChatEvent } from "../../src/domain/chat/Events.js"
import { Message, MessageJson, unsafeMessage } from "../../src/domain/chat/Model.js"
import { encodeMessage, messageJson } from "../../src/infra/wire/MessageJson.js"

describe("encodeMessage", () => {
  it("is exactly the contract's schema encoding, for every shape of message", () => {
    const base = {
      id: "0b1a4a3e-5c6d-4e7f-8a9b-0c1d2e3f4a5b",
      conversationId: "1b1a4a3e-5c6d-4e7f-8a9b-0c1d2e3f4a5b",
      seq: 7,
      senderId: "2b1a4a3e-5c6d-4e7f-8a9b-0c1d2e3f4a5b",
      receiverId: "3b1a4a3e-5c6d-4e7f-8a9b-0c1d2e3f4a5b",
      content: "hello \"world\" ✓",
      type: "text",
      isRead: false,
      readAt: null,
      fileUrl: null,
      fileName: null,
      clientMessageId: "c-1",
      createdAt: new Date("2026-11-25T10:00:00.123Z"),
      updatedAt: new Date("2026-11-25T10:00:01Z")
    } as const
    const variants = [
      base,
      { ...base, isRead: true, readAt: new Date("2026-11-25T11:00:00Z"), clientMessageId: null },
      { ...base, type: "system", senderId: null, receiverId: null },
      { ...base, type: "image", fileUrl: "/chat/attachments/x", fileName: "a \"quoted\" \\ name\n.png" },
      { ...base, content: "\u0000\u001f\u2028\u2029 </script> 🏋️", clientMessageId: "\"id\"\\" }
    ]
    for (const row of variants) {
      const message = Schema.decodeUnknownSync(Message)(row)
      expect(encodeMessage(message)).toEqual(Schema.encodeSync(MessageJson)(message))
      expect(messageJson(message)).toBe(JSON.stringify(Schema.encodeSync(MessageJson)(message)))
      expect(encodeMessage(message).createdAt).toBe(DateTime.formatIso(DateTime.unsafeFromDate(row.createdAt)))
    }
  })
})

describe("unsafeMessage", () => {
  it("makes what the class's constructor makes: prototype, own fields, equality, encoding", () => {
    const fields = Schema.decodeUnknownSync(Message)({
      id: "0b1a4a3e-5c6d-4e7f-8a9b-0c1d2e3f4a5b",
      conversationId: "1b1a4a3e-5c6d-4e7f-8a9b-0c1d2e3f4a5b",
      seq: 3,
      senderId: null,
      receiverId: "3b1a4a3e-5c6d-4e7f-8a9b-0c1d2e3f4a5b",
      content: "x",
      type: "system",
      isRead: true,
      readAt: new Date("2026-11-25T11:00:00Z"),
      fileUrl: null,
      fileName: null,
      clientMessageId: null,
      createdAt: new Date("2026-11-25T10:00:00.123Z"),
      updatedAt: new Date("2026-11-25T10:00:01Z")
    })
    const made = new Message({ ...fields }, { disableValidation: true })
    const fast = unsafeMessage({ ...fields })
    expect(Object.getPrototypeOf(fast)).toBe(Object.getPrototypeOf(made))
    expect(fast).toBeInstanceOf(Message)
    expect(Object.entries(fast)).toEqual(Object.entries(made))
    expect(Equal.equals(fast, made)).toBe(true)
    expect(Schema.encodeSync(MessageJson)(fast)).toEqual(Schema.encodeSync(MessageJson)(made))
    expect(Schema.is(Message)(fast)).toBe(true)
  })
})

describe("bus envelopes", () => {
  it("a message event written by hand decodes with the event schema to the same event", () => {
    const message = Schema.decodeUnknownSync(Message)({
      id: "0b1a4a3e-5c6d-4e7f-8a9b-0c1d2e3f4a5b",
      conversationId: "1b1a4a3e-5c6d-4e7f-8a9b-0c1d2e3f4a5b",
      seq: 3,
      senderId: "2b1a4a3e-5c6d-4e7f-8a9b-0c1d2e3f4a5b",
      receiverId: "3b1a4a3e-5c6d-4e7f-8a9b-0c1d2e3f4a5b",
      content: "hi",
      type: "text",
      isRead: false,
      readAt: null,
      fileUrl: null,
      fileName: null,
      clientMessageId: null,
      createdAt: new Date("2026-11-25T10:00:00.123Z"),
      updatedAt: new Date("2026-11-25T10:00:00.123Z")
    })
    const byHand = JSON.stringify({ from: "a", event: { _tag: "MessageCreated", message: encodeMessage(message) } })
    const bySchema = Schema.encodeSync(Schema.parseJson(Schema.Struct({ from: Schema.String, event: ChatEvent })))({
      from: "a",
      event: { _tag: "MessageCreated", message }
    })
    expect(JSON.parse(byHand)).toEqual(JSON.parse(bySchema))
  })
})
