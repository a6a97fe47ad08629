/**
 * Fuzzing the Socket.IO door below the client library: random and mutated Engine.IO / Socket.IO packets over
 * a raw WebSocket, and random long-polling bodies, against the server in a child process. After each batch
 * the process lives, /health answers, and a real socket.io-client connection still sends and is acked.
 * `FUZZ_SEED` replays a run, `FUZZ_RUNS` runs longer.
 */
import fc from "fast-check"
import { io } from "socket.io-client"
import { afterAll, beforeAll, describe, it } from "vitest"
import WebSocket from "ws"
import { pair, type Pair } from "../support/Chat.js"
import { type FuzzTarget, startFuzzTarget } from "../support/FuzzTarget.js"
import { anyJson, noise, parameters, testTimeout, verdict } from "./generators.js"

let target: FuzzTarget
let who: Pair

const eventNames = fc.constantFrom(
  "sendMessage", "joinConversation", "typing", "markAsRead", "leaveConversation", "error", "__proto__", "constructor",
  "toString", "connect", "disconnect", "newListener", "removeListener", ""
)

/** One packet as a client could write it after the handshake (text), or a binary frame. */
const packet: fc.Arbitrary<string | Uint8Array> = fc.oneof(
  // Socket.IO EVENT / ACK packets of the default namespace, with any event name and data.
  fc.tuple(eventNames, anyJson).map(([name, data]) => `42${JSON.stringify(name)}`.replace(/^42(.*)$/, `42[$1,${data}]`)),
  fc.tuple(fc.nat(1_000_000), eventNames, anyJson).map(([id, name, data]) => `42${id}[${JSON.stringify(name)},${data}]`),
  fc.tuple(fc.nat(), anyJson).map(([id, data]) => `43${id}[${data}]`),
  // Binary placeholders with or without their attachments, other namespaces, connect/disconnect packets.
  fc.tuple(fc.nat(5), eventNames).map(([n, name]) => `45${n}-[${JSON.stringify(name)},{"_placeholder":true,"num":0}]`),
  fc.tuple(fc.constantFrom("40", "41", "44", "40/admin,", "42/admin,", "4"), noise).map(([head, tail]) => head + tail),
  // Engine.IO packets: ping, pong, upgrade, noop, close, and junk.
  fc.constantFrom("2", "3", "5", "6", "1", "0", "7", "2probe", "3probe"),
  noise.map((s) => `4${s}`),
  fc.string({ maxLength: 60 }),
  fc.uint8Array({ maxLength: 64 })
)

/** A raw WebSocket that did the Engine.IO handshake and connected to the default namespace with a token. */
const rawSocket = (token: string) =>
  new Promise<WebSocket>((resolve, reject) => {
    const ws = new WebSocket(`${target.url().replace(/^http/, "ws")}/socket.io/?EIO=4&transport=websocket`)
    const timer = setTimeout(() => reject(new Error("no Socket.IO handshake")), 5000)
    ws.on("message", (data) => {
      const text = data.toString()
      if (text.startsWith("0")) ws.send(`40${JSON.stringify({ token })}`)
      else if (text.startsWith("40")) {
        clearTimeout(timer)
        resolve(ws)
      } else if (text === "2") ws.send("3")
    })
    ws.on("error", reject)
  })

/** A long-polling session id (the handshake's `sid`) after connecting to the default namespace. */
const pollingSession = async (token: string) => {
  const base = `${target.url()}/socket.io/?EIO=4&transport=polling`
  const open = await (await fetch(base)).text()
  const sid = (JSON.parse(open.slice(1)) as { sid: string }).sid
  await fetch(`${base}&sid=${sid}`, { method: "POST", body: `40${JSON.stringify({ token })}` })
  await fetch(`${base}&sid=${sid}`)
  return `${base}&sid=${sid}`
}

/** The door still serves: /health, and a real client's send is acked. */
const stillServing = async (): Promise<Array<string>> => {
  const problems: Array<string> = []
  const exited = target.exited()
  if (exited !== undefined) {
    await target.settle(1000)
    return [`process exited — ${JSON.stringify(exited)}\n${target.tail()}`]
  }
  const health = await fetch(`${target.url()}/health`).then((r) => r.status, (e: unknown) => String(e))
  if (health !== 200) problems.push(`health — ${health}`)
  const client = io(target.url(), { path: "/socket.io/", transports: ["websocket"], auth: { token: who.user.token }, reconnection: false, forceNew: true })
  try {
    const answer = await client.timeout(5000).emitWithAck("sendMessage", { conversationId: who.conversationId, content: "still there?" })
    if (answer?.message?.content !== "still there?") problems.push(`send after the batch — ${JSON.stringify(answer)}`)
  } catch (error) {
    problems.push(`send after the batch — ${String(error)}`)
  } finally {
    client.close()
  }
  return problems
}

describe("Socket.IO door fuzz", () => {
  beforeAll(async () => {
    target = await startFuzzTarget({ WS_SEND_PER_SECOND: "100000", WS_SEND_BURST: "100000" }, "\"level\":\"ERROR\"")
    who = await target.run(pair)
  }, 120_000)
  afterAll(() => target?.close())

  it("random packets over WebSocket never take the process down", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(packet, { minLength: 1, maxLength: 25 }), async (packets) => {
        const ws = await rawSocket(who.user.token)
        for (const p of packets) ws.send(p)
        await new Promise((resolve) => setTimeout(resolve, 50))
        ws.terminate()
        if (target.exited() !== undefined) await target.restart().catch(() => undefined)
        verdict(await stillServing())
      }),
      parameters(40, 40_000)
    )
  }, testTimeout(40_000))

  it("random long-polling bodies never take the process down", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.oneof(packet.filter((p) => typeof p === "string"), fc.string()), { minLength: 1, maxLength: 5 }), async (bodies) => {
        const url = await pollingSession(who.user.token)
        for (const body of bodies) {
          // Engine.IO joins packets of one body with \x1e.
          await fetch(url, { method: "POST", body: typeof body === "string" ? body : "" }).then((r) => r.text(), () => "")
        }
        await fetch(`${url.replace(/&sid=.*$/, "")}&sid=nonsense`, { method: "POST", body: "42[\"x\"]" }).catch(() => undefined)
        // The session ends (Engine.IO's close packet): a user holds a bounded number of connections.
        await fetch(url, { method: "POST", body: "1" }).then((r) => r.text(), () => "")
        verdict(await stillServing())
      }),
      parameters(30, 30_000)
    )
  }, testTimeout(30_000))
})
