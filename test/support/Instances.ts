import { Effect, Schedule, type Scope } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import * as Net from "node:net"
import { admin, jwtSecret, serverAt } from "./TestApp.js"
import { tempDir } from "./TempDir.js"

export const freePort = Effect.async<number>((resume) => {
  const server = Net.createServer().listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

export const exitOf = (child: ChildProcess) =>
  Effect.async<number | null>((resume) => {
    if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.succeed(child.exitCode))
    child.once("exit", (code) => resume(Effect.succeed(code)))
  })

export interface Instance {
  readonly port: number
  readonly url: string
  readonly child: ChildProcess
  readonly server: ReturnType<typeof serverAt>
}

/**
 * The server as a separate process (`src/main.ts`), configured by `env` on
 * top of test defaults, ready when this succeeds; killed with the scope.
 */
export const startInstance = (
  env: Record<string, string>,
  options: {
    /** The process's stdout (its log lines), as they come; otherwise dropped. */
    readonly logs?: Array<string>
  } = {}
): Effect.Effect<Instance, Error, Scope.Scope> =>
  Effect.gen(function*() {
    const port = yield* freePort
    // Attachments of this instance, unless the caller shares a directory (or S3) between instances.
    const storage = yield* tempDir("chat-instance-files-")
    const child = yield* Effect.acquireRelease(
      Effect.sync(() =>
        spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
          env: {
            PATH: process.env.PATH ?? "",
            NODE_ENV: "test",
            LOG_LEVEL: "Warn",
            HOST: "127.0.0.1",
            METRICS_PORT: "0",
            JWT_SECRET: jwtSecret,
            ADMIN_EMAIL: admin.email,
            ADMIN_PASSWORD: admin.password,
            AUTH_RATE_LIMIT_PER_IP: "100000",
            AUTH_RATE_LIMIT_PER_EMAIL: "100000",
            SEND_RATE_LIMIT: "100000",
            WS_SEND_PER_SECOND: "10000",
            WS_SEND_BURST: "10000",
            STORAGE_DIR: storage,
            ...env,
            PORT: String(port)
          },
          stdio: ["ignore", options.logs === undefined ? "ignore" : "pipe", "inherit"]
        })
      ),
      (child) =>
        Effect.gen(function*() {
          if (child.exitCode !== null || child.signalCode !== null) return
          child.kill("SIGTERM")
          yield* exitOf(child).pipe(
            Effect.timeout("5 seconds"),
            Effect.catchAll(() => Effect.sync(() => child.kill("SIGKILL")))
          )
        })
    )
    const logs = options.logs
    if (logs !== undefined) {
      let partial = ""
      child.stdout?.on("data", (chunk: Buffer) => {
        const lines = (partial + chunk.toString()).split("\n")
        partial = lines.pop() ?? ""
        logs.push(...lines)
      })
    }
    const url = `http://127.0.0.1:${port}`
    const server = serverAt(url)
    yield* server.request("GET", "/ready").pipe(
      Effect.catchAllDefect(() => Effect.succeed({ status: 0 })),
      Effect.flatMap((reply) => reply.status === 200 ? Effect.void : Effect.fail(new Error("not ready"))),
      Effect.retry(Schedule.spaced("100 millis")),
      Effect.timeoutFail({ duration: "40 seconds", onTimeout: () => new Error(`instance on ${port} did not become ready`) })
    )
    return { port, url, child, server }
  })
