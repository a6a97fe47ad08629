import { SqlClient } from "@effect/sql"
import { expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, Logger, LogLevel, Schedule } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import * as Net from "node:net"
import * as SqlClientLive from "../../src/infra/sql/Client.js"
import { pair } from "../support/Chat.js"
import { freshDatabase } from "../support/Database.js"
import { admin, jwtSecret, serverAt, TestServer } from "../support/TestApp.js"
import { connect } from "../support/Ws.js"

const freePort = Effect.async<number>((resume) => {
  const server = Net.createServer().listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

const exitOf = (child: ChildProcess) =>
  Effect.async<number | null>((resume) => {
    if (child.exitCode !== null) return resume(Effect.succeed(child.exitCode))
    child.once("exit", (code) => resume(Effect.succeed(code)))
  })

it.live("SIGTERM: sockets close with 1001, sends in flight finish, every acked message is stored, exit 0", () =>
  Effect.gen(function*() {
    const database = yield* freshDatabase
    const port = yield* freePort
    const child = yield* Effect.acquireRelease(
      Effect.sync(() =>
        spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
          env: {
            PATH: process.env.PATH ?? "",
            NODE_ENV: "test",
            LOG_LEVEL: "Warn",
            PORT: String(port),
            HOST: "127.0.0.1",
            JWT_SECRET: jwtSecret,
            ADMIN_EMAIL: admin.email,
            ADMIN_PASSWORD: admin.password,
            WS_SEND_PER_SECOND: "10000",
            WS_SEND_BURST: "10000",
            SEND_RATE_LIMIT: "100000",
            ...database
          },
          stdio: ["ignore", "ignore", "inherit"]
        })
      ),
      (child) => Effect.sync(() => child.exitCode === null && child.kill("SIGKILL"))
    )
    const server = serverAt(`http://127.0.0.1:${port}`)
    yield* Effect.flatMap(
      server.request("GET", "/ready").pipe(Effect.catchAllDefect(() => Effect.succeed({ status: 0 }))),
      (r) => r.status === 200 ? Effect.void : Effect.fail("not ready")
    ).pipe(Effect.retry(Schedule.spaced("100 millis")), Effect.timeout("30 seconds"))

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
