import { Effect, Exit, Schedule, Scope } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import WebSocket from "ws"
import { freshDatabase, freshRedis } from "./Database.js"
import { exitOf, freePort } from "./Instances.js"
import { admin, jwtSecret, serverAt, TestServer } from "./TestApp.js"
import { tempDir } from "./TempDir.js"

/**
 * The server as a child process for the fuzz suites: a frame that kills it is seen as an exit (with the
 * tail of its output), not as the death of the test runner. It is restarted on the same database, so
 * the accounts and tokens made before stay good. Its output is kept to search it for received values.
 */
export interface FuzzTarget {
  readonly url: () => string
  readonly server: () => TestServer["Type"]
  /** How the last process ended, when it did. */
  readonly exited: () => { readonly code: number | null; readonly signal: string | null } | undefined
  /** The last lines the process wrote (stdout and stderr). */
  readonly tail: (lines?: number) => string
  /** Every line written so far that contains the watched string. */
  readonly watched: () => ReadonlyArray<string>
  /** Waits up to `ms` for a dying process to be gone (a crash may take a while to write its stack). */
  readonly settle: (ms: number) => Promise<void>
  readonly restart: () => Promise<void>
  /** Runs a test-support effect against the current process. */
  readonly run: <A, E>(effect: Effect.Effect<A, E, TestServer>) => Promise<A>
  readonly close: () => Promise<void>
}

const spawnServer = (env: Record<string, string>, port: number, output: Array<string>, onLine: (line: string) => void) => {
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
    env: {
      PATH: process.env.PATH ?? "",
      NODE_ENV: "test",
      LOG_LEVEL: "Warn",
      LOG_FORMAT: "json",
      HOST: "127.0.0.1",
      METRICS_PORT: "0",
      JWT_SECRET: jwtSecret,
      ADMIN_EMAIL: admin.email,
      ADMIN_PASSWORD: admin.password,
      AUTH_RATE_LIMIT_PER_IP: "100000",
      AUTH_RATE_LIMIT_PER_EMAIL: "100000",
      SEND_RATE_LIMIT: "100000",
      WS_SEND_PER_SECOND: "100000",
      WS_SEND_BURST: "100000",
      WS_TYPING_PER_SECOND: "100000",
      ...env,
      PORT: String(port)
    },
    stdio: ["ignore", "pipe", "pipe"]
  })
  let partial = ""
  const collect = (chunk: Buffer) => {
    const lines = (partial + chunk.toString("utf8")).split("\n")
    partial = lines.pop() ?? ""
    for (const line of lines) onLine(line)
    output.push(...lines)
    // A long run keeps its last lines only (`onLine` saw every one).
    if (output.length > 20_000) output.splice(0, output.length - 10_000)
  }
  child.stdout.on("data", collect)
  child.stderr.on("data", collect)
  return child
}

const ready = (url: string, child: ChildProcess, output: ReadonlyArray<string>) =>
  serverAt(url).request("GET", "/ready").pipe(
    Effect.catchAllDefect(() => Effect.succeed({ status: 0 })),
    Effect.flatMap((reply) => reply.status === 200 ? Effect.void : Effect.fail(new Error("not ready"))),
    Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.whileInput(() => child.exitCode === null))),
    Effect.timeoutFail({ duration: "90 seconds", onTimeout: () => new Error(`no server ready at ${url}`) }),
    Effect.mapError(() => new Error(`the server did not start at ${url}:\n${output.slice(-20).join("\n")}`))
  )

const stop = (child: ChildProcess) =>
  Effect.gen(function*() {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill("SIGTERM")
    yield* exitOf(child).pipe(
      Effect.timeout("5 seconds"),
      Effect.catchAll(() => Effect.sync(() => child.kill("SIGKILL")))
    )
  })

/**
 * A fresh database (and Redis prefix, with REDIS_URL) and the server on it; `env` overrides settings.
 * Output lines containing `watch` are kept apart.
 */
export const startFuzzTarget = async (env: Record<string, string>, watch: string): Promise<FuzzTarget> => {
  const scope = await Effect.runPromise(Scope.make())
  const inScope = <A, E>(effect: Effect.Effect<A, E, Scope.Scope>) => Effect.runPromise(Scope.extend(effect, scope))
  const database = await inScope(freshDatabase)
  const redis = await inScope(freshRedis)
  const storage = await inScope(tempDir("chat-fuzz-files-"))
  const settings = { ...database, ...redis, STORAGE_DIR: storage, ...env }
  const output: Array<string> = []
  const seen: Array<string> = []
  const onLine = (line: string) => {
    if (line.includes(watch) && seen.length < 100) seen.push(line.slice(0, 2000))
  }
  let child: ChildProcess
  let url = ""
  const start = async (attempt = 1): Promise<void> => {
    output.length = 0
    const port = await Effect.runPromise(freePort)
    child = spawnServer(settings, port, output, onLine)
    url = `http://127.0.0.1:${port}`
    try {
      await Effect.runPromise(ready(url, child, output))
    } catch (error) {
      // Another process may have taken the free port first: once more on another.
      if (attempt > 1) throw error
      await Effect.runPromise(stop(child))
      await start(attempt + 1)
    }
  }
  await start()
  return {
    url: () => url,
    server: () => serverAt(url),
    exited: () =>
      child.exitCode !== null || child.signalCode !== null
        ? { code: child.exitCode, signal: child.signalCode }
        : undefined,
    tail: (lines = 30) => output.slice(-lines).join("\n").slice(-6000),
    watched: () => seen,
    settle: (ms) => Effect.runPromise(exitOf(child).pipe(Effect.timeout(ms), Effect.ignore)),
    restart: async () => {
      await Effect.runPromise(stop(child))
      await start()
    },
    run: (effect) => Effect.runPromise(Effect.provideService(effect, TestServer, serverAt(url))),
    close: async () => {
      await Effect.runPromise(stop(child))
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  }
}

export interface WireFrame {
  readonly event?: unknown
  readonly id?: unknown
  readonly data?: unknown
}

/** A raw WebSocket client: sends text or binary as given, records every frame and the close. */
export class FuzzSocket {
  readonly frames: Array<WireFrame> = []
  /** Frames the server sent that are not JSON objects (there should be none). */
  readonly garbage: Array<string> = []
  closed: { readonly code: number; readonly reason: string } | undefined
  private readonly waiters = new Set<() => void>()

  private constructor(readonly socket: WebSocket) {
    socket.on("message", (data: Buffer) => {
      const text = data.toString("utf8")
      try {
        const parsed: unknown = JSON.parse(text)
        if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)) this.frames.push(parsed)
        else this.garbage.push(text)
      } catch {
        this.garbage.push(text)
      }
      this.wake()
    })
    socket.on("close", (code, reason) => {
      this.closed = { code, reason: reason.toString() }
      this.wake()
    })
    socket.on("error", () => {})
  }

  static open(url: string, token: string): Promise<FuzzSocket> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url.replace(/^http/, "ws") + "/ws", { headers: { authorization: `Bearer ${token}` } })
      const client = new FuzzSocket(ws)
      ws.once("open", () => resolve(client))
      ws.once("unexpected-response", (_, response) => reject(new Error(`upgrade refused: ${response.statusCode}`)))
      ws.once("error", reject)
    })
  }

  private wake() {
    for (const wake of this.waiters) wake()
  }

  send(payload: string | Buffer, binary = false) {
    this.socket.send(payload, { binary })
  }

  /** Replies (ack or error) that carry `id`. */
  repliesTo(id: string) {
    return this.frames.filter((f) => f.id === id && (f.event === "ack" || f.event === "error"))
  }

  /** Resolves true once `check` holds, false after `timeoutMs` or when the socket closes first. */
  until(check: () => boolean, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const attempt = () => {
        if (check()) return done(true)
        if (this.closed !== undefined) return done(false)
      }
      const timer = setTimeout(() => done(false), timeoutMs)
      const done = (result: boolean) => {
        clearTimeout(timer)
        this.waiters.delete(attempt)
        resolve(result)
      }
      this.waiters.add(attempt)
      attempt()
    })
  }

  /** Sends a frame with a fresh id and resolves with its reply, or undefined after `timeoutMs`. */
  async request(event: string, data: unknown, timeoutMs = 10_000): Promise<WireFrame | undefined> {
    const id = `probe-${Math.random().toString(36).slice(2)}`
    this.send(JSON.stringify({ event, data, id }))
    const ok = await this.until(() => this.repliesTo(id).length > 0, timeoutMs)
    return ok ? this.repliesTo(id)[0] : undefined
  }

  terminate() {
    this.socket.terminate()
  }
}
