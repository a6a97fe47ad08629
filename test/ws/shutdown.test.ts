import { SqlClient } from "@effect/sql"
import { expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Fiber, Layer, Logger, LogLevel } from "effect"
import * as Net from "node:net"
import * as SqlClientLive from "../../src/infra/sql/Client.js"
import { pair } from "../support/Chat.js"
import { freshDatabase } from "../support/Database.js"
import { exitOf, startInstance } from "../support/Instances.js"
import { TestServer } from "../support/TestApp.js"
import { connectIo, isEvent } from "../support/SocketIo.js"
import { connect } from "../support/Ws.js"

const storedOf = (database: Record<string, string>, conversationId: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    return yield* sql<{ id: string; seq: number; clientMessageId: string | null }>`
      SELECT id, seq, client_message_id AS "clientMessageId" FROM messages WHERE conversation_id = ${conversationId} ORDER BY seq`
  }).pipe(
    Effect.provide(SqlClientLive.layer.pipe(
      Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(database)))))
    ))
  )

it.live(
  "SIGTERM with sends in flight: every stored message was acked before the socket closed with 1001, every acked one is stored, exit 0",
  () =>
    Effect.gen(function*() {
      const database = yield* freshDatabase
      const { child, server } = yield* startInstance(database)
      const { conversationId, user } = yield* Effect.provideService(pair, TestServer, server)
      const socket = yield* Effect.provideService(connect(user.token), TestServer, server)
      // Sends keep coming (up to 4,000) until the socket closes: some are in flight (committing) when SIGTERM arrives.
      let i = 0
      const sending = setInterval(() => {
        if (socket.socket.readyState !== socket.socket.OPEN || i >= 4000) return clearInterval(sending)
        for (let k = 0; k < 20; k++) {
          i++
          socket.socket.send(JSON.stringify({ event: "sendMessage", id: `s${i}`, data: { conversationId, content: `m${i}`, clientMessageId: `s${i}` } }))
        }
      }, 2)
      yield* Effect.addFinalizer(() => Effect.sync(() => clearInterval(sending)))
      yield* socket.next((f) => f.event === "ack", 10_000)
      yield* Effect.sleep("100 millis")
      child.kill("SIGTERM")
      // The close waits for the sends in flight (up to the grace period, 10 s).
      const closed = yield* Effect.suspend(() =>
        socket.socket.readyState === socket.socket.CLOSED
          ? Effect.map(socket.closed, (c) => c.code)
          : Effect.async<number>((resume) => void socket.socket.once("close", (code) => resume(Effect.succeed(code))))
      ).pipe(Effect.timeout("15 seconds"))
      expect(closed).toBe(1001)
      const code = yield* exitOf(child).pipe(Effect.timeout("15 seconds"))
      expect(code).toBe(0)

      // Frames are all in before the close event: an ack here reached the client before its socket closed.
      const acked = new Set(socket.frames.filter((f) => f.event === "ack").map((f) => f.data.message.id as string))
      const refused = socket.frames.filter((f) => f.event === "error")
      for (const f of refused) expect(f.data.code).toBe("ShuttingDown")
      const stored = yield* storedOf(database, conversationId)
      const ids = new Set(stored.map((m) => m.id))
      for (const id of acked) expect(ids.has(id)).toBe(true)
      const unacked = stored.filter((m) => !acked.has(m.id))
      expect(unacked.map((m) => m.clientMessageId)).toEqual([])
      expect(stored.map((m) => m.seq)).toEqual(stored.map((_, k) => k + 1))
      expect(acked.size).toBeGreaterThan(0)
      expect(acked.size + refused.length).toBeLessThanOrEqual(i)
    }).pipe(Effect.scoped, Effect.provide(Logger.minimumLogLevel(LogLevel.Warning))),
  60_000
)

it.live(
  "SIGTERM with Socket.IO sends in flight: every stored message was acked, the client hears SocketClosed 1001 and its transport closes (it would reconnect elsewhere), exit 0",
  () =>
    Effect.gen(function*() {
      const database = yield* freshDatabase
      const { child, server } = yield* startInstance(database)
      const { conversationId, user } = yield* Effect.provideService(pair, TestServer, server)
      const client = yield* Effect.provideService(connectIo(user.token), TestServer, server)
      const acked = new Set<string>()
      const refused: Array<string> = []
      let i = 0
      const sending = setInterval(() => {
        if (!client.socket.connected || i >= 4000) return clearInterval(sending)
        for (let k = 0; k < 20; k++) {
          i++
          client.socket.emit("sendMessage", { conversationId, content: `m${i}`, clientMessageId: `s${i}` }, (answer: any) => {
            if (answer?.message !== undefined) acked.add(answer.message.id)
            else refused.push(answer?.error?.code)
          })
        }
      }, 2)
      yield* Effect.addFinalizer(() => Effect.sync(() => clearInterval(sending)))
      yield* Effect.sleep("300 millis")
      child.kill("SIGTERM")
      expect((yield* client.next(isEvent("error", (e) => e.code === "SocketClosed"), 15_000)).data.closeCode).toBe(1001)
      expect(yield* client.disconnected).toBe("transport close")
      expect(yield* exitOf(child).pipe(Effect.timeout("15 seconds"))).toBe(0)
      for (const code of refused) expect(code).toBe("ShuttingDown")
      const stored = yield* storedOf(database, conversationId)
      const unacked = stored.filter((m) => !acked.has(m.id))
      expect(unacked.map((m) => m.clientMessageId)).toEqual([])
      expect(stored.map((m) => m.seq)).toEqual(stored.map((_, k) => k + 1))
      expect(acked.size).toBeGreaterThan(0)
    }).pipe(Effect.scoped, Effect.provide(Logger.minimumLogLevel(LogLevel.Warning))),
  60_000
)

/** A slow client's upload: 10 pieces of 50 KB, 100 ms apart; `afterFirst` runs once the first piece went. */
const slowUpload = (token: string, afterFirst: () => void = () => undefined) => {
  let sent = 0
  const body = new ReadableStream<Uint8Array>({
    pull: async (controller) => {
      if (sent === 10) return controller.close()
      if (sent > 0) await new Promise((resolve) => setTimeout(resolve, 100))
      controller.enqueue(new Uint8Array(50_000).fill(0x61))
      sent++
      if (sent === 1) afterFirst()
    }
  })
  const init: RequestInit & { readonly duplex: "half" } = {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "text/plain" },
    body,
    duplex: "half"
  }
  return init
}

it.live("SIGTERM during an upload: the upload finishes (201) before the process exits 0", () =>
  Effect.gen(function*() {
    const database = yield* freshDatabase
    const { child, server } = yield* startInstance(database)
    const { user } = yield* Effect.provideService(pair, TestServer, server)
    // A slow client; SIGTERM comes after its first piece.
    const init = slowUpload(user.token, () => setTimeout(() => child.kill("SIGTERM"), 50))
    const answer = yield* Effect.promise(() =>
      fetch(`${server.url}/chat/attachments?fileName=notes.txt`, init).then(async (response) => ({ status: response.status, body: JSON.parse(await response.text()) }))
    )
    expect(answer.status).toBe(201)
    expect(answer.body.size).toBe(500_000)
    expect(yield* exitOf(child).pipe(Effect.timeout("15 seconds"))).toBe(0)
  }).pipe(Effect.scoped, Effect.provide(Logger.minimumLogLevel(LogLevel.Warning))), 60_000)

/** One HTTP/1.1 exchange on a socket kept open: what came back within `waitMs`. */
const exchange = (socket: Net.Socket, request: string, waitMs: number) =>
  Effect.async<string>((resume) => {
    let text = ""
    const onData = (chunk: Buffer) => void (text += chunk.toString())
    socket.on("data", onData)
    socket.write(request)
    setTimeout(() => {
      socket.off("data", onData)
      resume(Effect.succeed(text))
    }, waitMs)
  })

it.live("SIGTERM: requests on connections kept alive (HttpApp and fast routes) get 503 ShuttingDown and the connection closes, while the upload in flight finishes", () =>
  Effect.gen(function*() {
    const database = yield* freshDatabase
    const { child, server } = yield* startInstance(database)
    const { conversationId, user } = yield* Effect.provideService(pair, TestServer, server)
    const port = Number(new URL(server.url).port)
    const open = Effect.acquireRelease(
      Effect.async<Net.Socket>((resume) => {
        const s = Net.connect(port, "127.0.0.1", () => resume(Effect.succeed(s)))
      }),
      (s) => Effect.sync(() => s.destroy())
    )
    // Two connections kept alive: one for the HttpApp's routes, one for a fast route (a send).
    const socket = yield* open
    const other = yield* open
    const health = "GET /health HTTP/1.1\r\nhost: localhost\r\n\r\n"
    const body = JSON.stringify({ conversationId, content: "hi", clientMessageId: "late-1" })
    const send = `POST /chat/messages HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer ${user.token}\r\n` +
      `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
    expect(yield* exchange(socket, health, 300)).toMatch(/^HTTP\/1\.1 200 /)
    expect(yield* exchange(other, health, 300)).toMatch(/^HTTP\/1\.1 200 /)

    // A slow upload holds the shutdown open (10 pieces, 100 ms apart).
    const init = slowUpload(user.token)
    const upload = yield* Effect.fork(Effect.promise(() =>
      fetch(`${server.url}/chat/attachments?fileName=notes.txt`, init).then((response) => response.status)
    ))
    yield* Effect.sleep("150 millis")
    child.kill("SIGTERM")
    yield* Effect.sleep("150 millis")
    const refused = yield* exchange(socket, health, 500)
    expect(refused).toMatch(/^HTTP\/1\.1 503 /)
    expect(refused).toContain(`"_tag":"ShuttingDown"`)
    expect(refused.toLowerCase()).toContain("connection: close")
    const refusedSend = yield* exchange(other, send, 500)
    expect(refusedSend).toMatch(/^HTTP\/1\.1 503 /)
    expect(refusedSend).toContain(`"_tag":"ShuttingDown"`)
    expect(yield* Fiber.join(upload)).toBe(201)
    // The refused send changed nothing.
    expect((yield* storedOf(database, conversationId)).map((m) => m.clientMessageId)).not.toContain("late-1")
    expect(yield* exitOf(child).pipe(Effect.timeout("15 seconds"))).toBe(0)
  }).pipe(Effect.scoped, Effect.provide(Logger.minimumLogLevel(LogLevel.Warning))), 60_000)
