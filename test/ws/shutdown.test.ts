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
