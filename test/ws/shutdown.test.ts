import { SqlClient } from "@effect/sql"
import { expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, Logger, LogLevel } from "effect"
import * as SqlClientLive from "../../src/infra/sql/Client.js"
import { pair } from "../support/Chat.js"
import { freshDatabase } from "../support/Database.js"
import { exitOf, startInstance } from "../support/Instances.js"
import { TestServer } from "../support/TestApp.js"
import { connect } from "../support/Ws.js"

it.live("SIGTERM: sockets close with 1001, sends in flight finish, every acked message is stored, exit 0", () =>
  Effect.gen(function*() {
    const database = yield* freshDatabase
    const { child, server } = yield* startInstance(database)
    const { conversationId, user } = yield* Effect.provideService(pair, TestServer, server)
    const socket = yield* Effect.provideService(connect(user.token), TestServer, server)
    const total = 60
    for (let i = 1; i <= total; i++) {
      yield* socket.send("sendMessage", { conversationId, content: `m${i}`, clientMessageId: `s${i}` }, `s${i}`)
    }
    yield* Effect.sleep("5 millis")
    child.kill("SIGTERM")
    const closed = yield* socket.closed
    expect(closed.code).toBe(1001)
    const code = yield* exitOf(child).pipe(Effect.timeout("15 seconds"))
    expect(code).toBe(0)

    const acked = socket.frames.filter((f) => f.event === "ack").map((f) => f.data.message.id as string)
    const stored = yield* Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      return yield* sql<{ id: string; seq: number }>`
        SELECT id, seq FROM messages WHERE conversation_id = ${conversationId} ORDER BY seq`
    }).pipe(
      Effect.provide(SqlClientLive.layer.pipe(
        Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(database)))))
      ))
    )
    const ids = new Set(stored.map((m) => m.id))
    for (const id of acked) expect(ids.has(id)).toBe(true)
    expect(stored.map((m) => m.seq)).toEqual(stored.map((_, i) => i + 1))
    expect(stored.length).toBeGreaterThanOrEqual(acked.length)
  }).pipe(Effect.scoped, Effect.provide(Logger.minimumLogLevel(LogLevel.Warning))), 60_000)

it.live("SIGTERM during an upload: the upload finishes (201) before the process exits 0", () =>
  Effect.gen(function*() {
    const database = yield* freshDatabase
    const { child, server } = yield* startInstance(database)
    const { user } = yield* Effect.provideService(pair, TestServer, server)
    // A slow client: 10 pieces of 50 KB, 100 ms apart; SIGTERM comes after the first.
    let sent = 0
    const body = new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        if (sent === 10) return controller.close()
        if (sent > 0) await new Promise((resolve) => setTimeout(resolve, 100))
        controller.enqueue(new Uint8Array(50_000).fill(0x61))
        sent++
        if (sent === 1) setTimeout(() => child.kill("SIGTERM"), 50)
      }
    })
    const init: RequestInit & { readonly duplex: "half" } = {
      method: "POST",
      headers: { authorization: `Bearer ${user.token}`, "content-type": "text/plain" },
      body,
      duplex: "half"
    }
    const answer = yield* Effect.promise(() =>
      fetch(`${server.url}/chat/attachments?fileName=notes.txt`, init).then(async (response) => ({ status: response.status, body: JSON.parse(await response.text()) }))
    )
    expect(answer.status).toBe(201)
    expect(answer.body.size).toBe(500_000)
    expect(yield* exitOf(child).pipe(Effect.timeout("15 seconds"))).toBe(0)
  }).pipe(Effect.scoped, Effect.provide(Logger.minimumLogLevel(LogLevel.Warning))), 60_000)
