/**
 * Fuzzing the WebSocket door: random and mutated frames for every client event, against the server in
 * a child process, over a real socket. After each batch: the process lives, the socket that sent the
 * batch and another one still get replies, /health answers, every frame with an id got exactly one
 * reply, no reply is `Internal` (the 500 of frames), no error message carries a received value, and a
 * valid frame is never refused as malformed. `FUZZ_SEED` replays a run, `FUZZ_RUNS` runs longer.
 */
import fc from "fast-check"
import { Schema } from "effect"
import { afterAll, beforeAll, describe, it } from "vitest"
import { ErrorCode } from "../../src/ws/Protocol.js"
import { pair, type Pair, send } from "../support/Chat.js"
import { FuzzSocket, type FuzzTarget, startFuzzTarget, type WireFrame } from "../support/FuzzTarget.js"
import {
  type Entries,
  hugeNumber,
  longString,
  marker,
  markedString,
  mutate,
  noise,
  numericString,
  objectText,
  parameters,
  prototypeKey,
  text,
  uuidLike,
  wrongType,
  anyJson,
  deepNesting,
  deepTag,
  exploring,
  explored,
  testTimeout,
  verdict
} from "./generators.js"

/** Replaced by a fresh frame id when a generated frame is sent. */
const ID = "§ID§"
/** The gateway's default WS_MAX_FRAME_BYTES: a larger frame is refused before its id is read. */
const maxFrameBytes = 16 * 1024

interface Generated {
  readonly kind: "valid" | "mutated data" | "mutated envelope" | "unknown event" | "noise" | "binary"
  readonly text: string
}

const isKnownCode = Schema.is(ErrorCode)
/** Codes a well-formed frame must never get: those say the frame itself is wrong (or the server broke). */
const malformed = new Set(["BadJson", "BadFrame", "UnknownEvent", "InvalidData", "Internal"])

let target: FuzzTarget
let fuzz: Pair
let other: Pair
let quiet: Pair
let sentinel: Pair
let messageIds: Array<string>
let socket: FuzzSocket
let quietSocket: FuzzSocket
let watcher: FuzzSocket
let counter = 0

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const openSockets = async () => {
  socket = await FuzzSocket.open(target.url(), fuzz.user.token)
  quietSocket = await FuzzSocket.open(target.url(), quiet.user.token)
  watcher = await FuzzSocket.open(target.url(), sentinel.user.token)
}

beforeAll(async () => {
  target = await startFuzzTarget({}, marker)
  ;[fuzz, other, quiet, sentinel] = await Promise.all([target.run(pair), target.run(pair), target.run(pair), target.run(pair)])
  const sent = await Promise.all([
    target.run(send(fuzz.user.token, fuzz.conversationId, "from the user")),
    target.run(send(fuzz.trainer.token, fuzz.conversationId, "from the trainer")),
    target.run(send(other.user.token, other.conversationId, "someone else's"))
  ])
  messageIds = sent.map((reply) => String(reply.body.id))
  await openSockets()
}, 150_000)

afterAll(async () => {
  for (const s of [socket, quietSocket, watcher]) s?.terminate()
  await target?.close()
})

// ---- frames -----------------------------------------------------------------------------------

const conversations = () => [fuzz.conversationId, other.conversationId, quiet.conversationId]
const users = () => [fuzz.user.id, fuzz.trainer.id, other.user.id, other.trainer.id]

/** Valid data of each event (right shapes, real or fresh ids; some ids belong to other users). */
const validData = (): Record<string, fc.Arbitrary<Entries>> => {
  const conversation = fc.oneof(
    { weight: 3, arbitrary: fc.constant(fuzz.conversationId) },
    fc.constantFrom(...conversations()),
    fc.uuid()
  )
  const seq = fc.nat(200).map(String)
  // Valid content: odd Unicode (lone surrogates are replaced by the server), but no NUL.
  const content = fc.tuple(markedString, fc.nat(9)).map(([s, n]) => text(`hello ${s.replaceAll("\0", "")} ${n}`))
  return {
    joinConversation: fc.tuple(conversation, fc.option(seq, { nil: undefined })).map(([c, since]): Entries => [
      ["conversationId", text(c)],
      ...(since === undefined ? [] : [["sinceSeq", since] as const])
    ]),
    leaveConversation: conversation.map((c): Entries => [["conversationId", text(c)]]),
    sendMessage: fc.oneof(
      { weight: 4, arbitrary: fc.tuple(conversation, content, fc.option(fc.uuid(), { nil: undefined, freq: 2 }), fc.boolean()).map(
        ([c, body, clientMessageId, typed]): Entries => [
          ["conversationId", text(c)],
          ["content", body],
          ...(typed ? [["type", text("text")] as const] : []),
          ...(clientMessageId === undefined ? [] : [["clientMessageId", text(clientMessageId)] as const])
        ]
      ) },
      { weight: 1, arbitrary: fc.tuple(conversation, fc.constantFrom("image", "file"), fc.uuid()).map(([c, type, attachment]): Entries => [
        ["conversationId", text(c)],
        ["type", text(type)],
        ["attachmentId", text(attachment)],
        ["clientMessageId", text(`cm-${attachment}`)]
      ]) }
    ),
    typing: fc.tuple(conversation, fc.boolean()).map(([c, on]): Entries => [["conversationId", text(c)], ["isTyping", String(on)]]),
    markAsRead: fc.oneof(
      fc.constantFrom(...messageIds).map((id): Entries => [["messageId", text(id)]]),
      fc.tuple(conversation, fc.option(seq, { nil: undefined })).map(([c, upTo]): Entries => [
        ["conversationId", text(c)],
        ...(upTo === undefined ? [] : [["upToSeq", upTo] as const])
      ])
    )
  }
}

const envelope = (event: string, data: string): Entries => [["event", text(event)], ["data", data], ["id", text(ID)]]

/** Replaces one field of valid data with a value built for it, or mutates the data generically. */
const mutatedData = (entries: Entries): fc.Arbitrary<string> => {
  const pool = [...conversations(), ...users(), ...messageIds]
  const specific: fc.Arbitrary<string> = fc.oneof(
    uuidLike(fc.constantFrom(...pool)).map(text),
    hugeNumber,
    numericString.map(text),
    longString.map(text),
    fc.constantFrom("null", "true", "\"\"", "\"   \"", "[]", "{}", "\"video\"", "\"TEXT\"", "\"\\u0000\"")
  )
  const keys = entries.map(([key]) => key)
  return fc.oneof(
    { weight: 2, arbitrary: fc.tuple(fc.constantFrom(...keys), specific).map(([key, value]) =>
      objectText(entries.map(([k, v]) => (k === key ? [k, value] : [k, v])))
    ) },
    { weight: 3, arbitrary: mutate(entries) }
  )
}

/** Every kind of frame: valid ones, one field of valid data changed, the envelope changed, unknown events, noise. */
const frames = (): fc.Arbitrary<Generated> => {
  const data = validData()
  const events = Object.keys(data)
  const valid = fc.constantFrom(...events).chain((event) => data[event]!.map((entries) => ({ event, entries })))
  const frame = (kind: Generated["kind"]) => (t: string): Generated => ({ kind, text: t })
  const validFrame = valid.map(({ entries, event }) => objectText(envelope(event, objectText(entries))))
  const mutatedDataFrame = valid.chain(({ entries, event }) =>
    mutatedData(entries).map((d) => objectText(envelope(event, d)))
  )
  const mutatedEnvelope = valid.chain(({ entries, event }) => {
    const base = envelope(event, objectText(entries))
    // The id itself: too long, of another type, odd.
    const oddId = fc.constantFrom(`"${ID}${"x".repeat(64)}"`, "1", "null", "[]", "{}", `"${ID}\\ud800"`, `"${ID}\\u0000"`)
    return fc.oneof(mutate(base), oddId.map((id) => objectText(base.map(([k, v]) => (k === "id" ? [k, id] : [k, v])))))
  })
  const unknownEvent = fc
    .tuple(fc.oneof(markedString, prototypeKey, fc.constantFrom("", "ack", "error", "JOINCONVERSATION")), anyJson)
    .map(([event, d]) => objectText([["event", text(event)], ["data", d], ["id", text(ID)]]))
  return fc.oneof(
    { weight: 3, arbitrary: validFrame.map(frame("valid")) },
    { weight: 8, arbitrary: mutatedDataFrame.map(frame("mutated data")) },
    { weight: 2, arbitrary: mutatedEnvelope.map(frame("mutated envelope")) },
    { weight: 1, arbitrary: unknownEvent.map(frame("unknown event")) },
    { weight: 1, arbitrary: noise.map(frame("noise")) },
    { weight: 1, arbitrary: validFrame.map(frame("binary")) }
  )
}

// ---- one batch --------------------------------------------------------------------------------

/** The id the server must answer for: a string of 1 to 64 characters on a JSON object it could read. */
const idOf = (payload: string): string | undefined => {
  if (Buffer.byteLength(payload) > maxFrameBytes) return undefined
  try {
    const json: unknown = JSON.parse(payload)
    if (typeof json !== "object" || json === null || Array.isArray(json) || !("id" in json)) return undefined
    return typeof json.id === "string" && json.id.length >= 1 && json.id.length <= 64 ? json.id : undefined
  } catch {
    return undefined
  }
}

const shown = (payload: string) => payload.length <= 300 ? payload : `${payload.slice(0, 300)}… (${payload.length} chars)`

const errorProblems = (frame: WireFrame, sentBy: string): Array<string> => {
  if (frame.event !== "error") return []
  const data = frame.data
  if (typeof data !== "object" || data === null || !("code" in data) || !("message" in data)) {
    return [`error without code and message — ${JSON.stringify(frame)} (after ${shown(sentBy)})`]
  }
  const problems: Array<string> = []
  if (!isKnownCode(data.code)) problems.push(`unknown error code — ${JSON.stringify(data.code)} (after ${shown(sentBy)})`)
  if (data.code === "Internal") problems.push(`Internal error${deepTag(sentBy)} — ${shown(sentBy)} → ${JSON.stringify(frame)}`)
  if (typeof data.message === "string" && data.message.includes(marker)) {
    problems.push(`error message echoes a received value — ${shown(sentBy)} → ${shown(data.message)}`)
  }
  return problems
}

/** Reopens what a failed batch left closed (the process too), so the next batch starts clean. */
const recover = async () => {
  const restart = async () => {
    await target.restart()
    for (const s of [socket, quietSocket, watcher]) s.terminate()
    await openSockets()
  }
  if (target.exited() !== undefined) return restart()
  try {
    if (socket.closed !== undefined) socket = await FuzzSocket.open(target.url(), fuzz.user.token)
    if (quietSocket.closed !== undefined) quietSocket = await FuzzSocket.open(target.url(), quiet.user.token)
    if (watcher.closed !== undefined) watcher = await FuzzSocket.open(target.url(), sentinel.user.token)
  } catch {
    await restart()
  }
}

/** Sends the batch on `via` and returns everything that went wrong, empty when nothing did. */
const runBatch = async (via: () => FuzzSocket, batch: ReadonlyArray<Generated>, own: string) => {
  await recover()
  const client = via()
  client.frames.length = 0
  const expected = new Map<string, { count: number; payload: string }>()
  const payloads: Array<{ generated: Generated; payload: string; id: string | undefined }> = []
  for (const generated of batch) {
    const payload = generated.text.replaceAll(ID, `f${++counter}`)
    client.send(generated.kind === "binary" ? Buffer.from(payload) : payload, generated.kind === "binary")
    const id = generated.kind === "binary" ? undefined : idOf(payload)
    if (id !== undefined) expected.set(id, { count: (expected.get(id)?.count ?? 0) + 1, payload })
    payloads.push({ generated, payload, id })
  }
  await client.until(() => [...expected].every(([id, { count }]) => client.repliesTo(id).length >= count), 10_000)
  // In order after the batch: the same socket still answers (and its bad-frame count starts again).
  const sync = await client.request("leaveConversation", { conversationId: own })
  await sleep(20)

  const problems: Array<string> = []
  const probe = await watcher.request("leaveConversation", { conversationId: sentinel.conversationId })
  const health = await fetch(`${target.url()}/health`).then((r) => r.status, (e: unknown) => String(e))
  if (health !== 200 || sync?.event !== "ack") await target.settle(5000)
  const exit = target.exited()
  if (exit !== undefined) {
    // Frames are read in order: the one that killed it came after the last one answered.
    const answered = payloads.reduce((last, { id }, i) => (id !== undefined && client.repliesTo(id).length > 0 ? i : last), -1)
    const suspects = payloads.slice(answered + 1).map(({ payload }) => payload)
    problems.push(
      `process exited${suspects.some((p) => deepTag(p) !== "") ? deepTag("[".repeat(65)) : ""} — code ${exit.code}, ` +
        `signal ${exit.signal}, after one of:\n  ${suspects.map(shown).join("\n  ")}\nits last output:\n${target.tail(15)}`
    )
    return problems
  }
  if (client.closed !== undefined) problems.push(`socket closed — ${client.closed.code} ${client.closed.reason}`)
  if (sync?.event !== "ack") problems.push(`socket no longer answers — ${JSON.stringify(sync)}`)
  if (probe?.event !== "ack") problems.push(`another socket no longer answers — ${JSON.stringify(probe)}`)
  if (health !== 200) problems.push(`/health fails — ${health}`)

  for (const [id, { count, payload }] of expected) {
    const replies = client.repliesTo(id)
    if (replies.length !== count) {
      problems.push(`wrong number of replies${deepTag(payload)} — ${replies.length} (expected ${count}) to ${shown(payload)}`)
    }
  }
  for (const { generated, id, payload } of payloads) {
    const replies = id === undefined ? [] : client.repliesTo(id)
    for (const reply of replies) problems.push(...errorProblems(reply, payload))
    if (generated.kind === "valid") {
      for (const reply of replies) {
        const code = reply.event === "error" && typeof reply.data === "object" && reply.data !== null && "code" in reply.data
          ? reply.data.code
          : undefined
        if (typeof code === "string" && malformed.has(code)) {
          problems.push(`valid frame refused as ${code} — ${shown(payload)} → ${JSON.stringify(reply.data)}`)
        }
      }
    }
  }
  for (const frame of client.frames) if (frame.id === undefined) problems.push(...errorProblems(frame, "a frame without id"))
  if (client.garbage.length > 0) problems.push(`server frames that are not JSON objects — ${client.garbage.slice(0, 3).join(" | ")}`)
  return problems
}

const latestSeq = async (p: Pair) => {
  const page = await fetch(`${target.url()}/chat/conversations/${p.conversationId}/messages?limit=1`, {
    headers: { authorization: `Bearer ${p.user.token}` }
  })
  const body: unknown = await page.json()
  if (typeof body !== "object" || body === null || !("messages" in body) || !Array.isArray(body.messages)) {
    throw new Error(`history: ${page.status} ${JSON.stringify(body)}`)
  }
  const last: unknown = body.messages.at(-1)
  return typeof last === "object" && last !== null && "seq" in last ? Number(last.seq) : 0
}

/** Frames of `sendMessage` that are certainly invalid: one field broken, or an extra key. */
const invalidSends = (): fc.Arbitrary<Generated> => {
  const base: Entries = [
    ["conversationId", text(quiet.conversationId)],
    ["content", text(`quiet ${marker}`)],
    ["clientMessageId", text("quiet-1")]
  ]
  const replace = (key: string, values: fc.Arbitrary<string>) =>
    values.map((value) => objectText([...base.filter(([k]) => k !== key), [key, value]]))
  const notAString = fc.oneof(
    fc.constantFrom("null", "true", "0", "-0", "[]", "{}", "[\"x\"]", `{"__proto__":"${marker}"}`),
    hugeNumber,
    deepNesting()
  )
  const data = fc.oneof(
    replace("conversationId", wrongType),
    replace("content", fc.oneof(notAString, fc.constantFrom("\"\"", "\"   \"", `"a\\u0000${marker}"`, text("x".repeat(4001))))),
    replace("clientMessageId", fc.oneof(notAString, fc.constantFrom("\"\"", text(marker.repeat(7))))),
    replace("type", fc.constantFrom("\"video\"", "\"TEXT\"", "1", "null")),
    fc.tuple(fc.oneof(prototypeKey, fc.constantFrom("extra", "seq", "senderId", "id")), anyJson).map(([key, value]) =>
      objectText([...base, [key, value]])
    ),
    fc.constant(objectText(base.filter(([k]) => k !== "conversationId"))),
    wrongType
  )
  return data.map((d): Generated => ({ kind: "mutated data", text: objectText(envelope("sendMessage", d)) }))
}

// ---- properties -------------------------------------------------------------------------------

describe("fuzz: WebSocket frames", () => {
  it("random and mutated frames of every event: one reply per id, never Internal, never an echo, the process lives", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(frames(), { minLength: 1, maxLength: 8 }), async (batch) => {
        const problems = await runBatch(() => socket, batch, fuzz.conversationId)
        verdict(problems)
      }),
      parameters(60, 15_000)
    )
  }, testTimeout(15_000))

  it("certainly invalid sends are all refused and store nothing", async () => {
    await recover()
    const before = await latestSeq(quiet)
    await fc.assert(
      fc.asyncProperty(fc.array(invalidSends(), { minLength: 1, maxLength: 6 }), async (batch) => {
        const problems = await runBatch(() => quietSocket, batch, quiet.conversationId)
        const acked = quietSocket.frames.filter((f) => f.event === "ack" && typeof f.id === "string" && f.id.startsWith("f"))
        if (acked.length > 0) problems.push(`invalid send acked — ${JSON.stringify(acked.slice(0, 2))}`)
        // A batch that killed the process says so; the count is checked on the next one.
        const after = target.exited() === undefined ? await latestSeq(quiet).catch(() => before) : before
        if (after !== before) problems.push(`rejected sends changed the conversation — latest seq ${before} → ${after}`)
        verdict(problems)
      }),
      parameters(20, 5_000)
    )
  }, testTimeout(5_000))

  it("no log line carries a received value", () => {
    verdict(target.watched().map((line) => `log line echoes a received value — ${line}`))
    if (exploring) console.log(`Problems found by kind:\n\n${explored()}`)
  })
})
