import { type Duration, Effect, Schedule, type Scope } from "effect"
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { exitOf, freePort } from "./Instances.js"
import { tempDir } from "./TempDir.js"

/**
 * Postgres and Redis processes of a test's own, on free ports, that it may kill, stall
 * and start again. Every process started here is killed when the scope closes, whatever the outcome.
 */

const pgBin = process.env.PG_BIN ?? "/usr/lib/postgresql/15/bin"

/** Postgres refuses to run as root: then it runs as the `postgres` account. */
const owner = (): { readonly uid: number; readonly gid: number } | undefined => {
  if (process.getuid?.() !== 0) return undefined
  const uid = Number(execFileSync("id", ["-u", "postgres"]).toString().trim())
  const gid = Number(execFileSync("id", ["-g", "postgres"]).toString().trim())
  return { uid, gid }
}

const childrenOf = (pid: number): Array<number> => {
  try {
    return execFileSync("ps", ["-o", "pid=", "--ppid", String(pid)]).toString().split("\n")
      .map((line) => Number(line.trim())).filter((n) => n > 0)
  } catch {
    return []
  }
}

const signal = (pid: number, name: NodeJS.Signals) => {
  try {
    process.kill(pid, name)
  } catch {
    // already gone
  }
}

export interface OwnPostgres {
  /** `postgres://postgres@127.0.0.1:PORT/postgres` */
  readonly url: string
  /** Immediate shutdown (SIGQUIT: what a crash leaves, recovered from the WAL at the next start). */
  readonly stop: Effect.Effect<void>
  /** Starts again on the same port and data; ready when this succeeds. */
  readonly start: Effect.Effect<void, Error>
  /** SIGSTOP of the postmaster and every backend: connections stay open, nothing answers. */
  readonly stall: Effect.Effect<void>
  readonly resume: Effect.Effect<void>
}

export const ownPostgres: Effect.Effect<OwnPostgres, Error, Scope.Scope> = Effect.gen(function*() {
  const dir = yield* tempDir("chat-faults-pg-")
  const data = Path.join(dir, "data")
  const as = owner()
  if (as !== undefined) Fs.chownSync(dir, as.uid, as.gid)
  const port = yield* freePort
  yield* Effect.try({
    try: () =>
      execFileSync(Path.join(pgBin, "initdb"), ["-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"], {
        stdio: "ignore",
        ...(as ?? {})
      }),
    catch: (cause) => new Error(`initdb failed: ${String(cause)}`)
  })
  let current: ChildProcess | undefined
  let stalled: Array<number> = []
  const ready = Effect.try({
    try: () => execFileSync(Path.join(pgBin, "pg_isready"), ["-q", "-h", "127.0.0.1", "-p", String(port)], { stdio: "ignore" }),
    catch: () => new Error("postgres not ready")
  }).pipe(
    Effect.retry(Schedule.spaced("50 millis")),
    Effect.timeoutFail({ duration: "30 seconds", onTimeout: () => new Error(`postgres on ${port} did not start`) })
  )
  const start = Effect.suspend(() => {
    current = spawn(Path.join(pgBin, "postgres"), [
      "-D", data, "-p", String(port), "-k", dir,
      "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "full_page_writes=off",
      "-c", "max_connections=200", "-c", "shared_buffers=64MB"
    ], { stdio: "ignore", ...(as ?? {}) })
    return ready
  })
  const stop = Effect.suspend(() => {
    const child = current
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return Effect.void
    for (const pid of stalled) signal(pid, "SIGCONT")
    stalled = []
    child.kill("SIGQUIT")
    return exitOf(child).pipe(
      Effect.timeout("10 seconds"),
      Effect.catchAll(() => Effect.sync(() => child.kill("SIGKILL"))),
      Effect.asVoid
    )
  })
  const stall = Effect.sync(() => {
    const pid = current?.pid
    if (pid === undefined) return
    stalled = [pid, ...childrenOf(pid)]
    for (const p of stalled) signal(p, "SIGSTOP")
  })
  const resume = Effect.sync(() => {
    for (const p of stalled) signal(p, "SIGCONT")
    stalled = []
  })
  yield* Effect.addFinalizer(() =>
    Effect.gen(function*() {
      const pid = current?.pid
      const family = pid === undefined ? [] : [...childrenOf(pid)]
      yield* stop
      // Backends outlive a postmaster killed the hard way for a moment: none stays behind.
      for (const p of family) signal(p, "SIGKILL")
    })
  )
  yield* start
  return { url: `postgres://postgres@127.0.0.1:${port}/postgres`, stop, start, stall, resume }
})

/**
 * Asks the Redis (or sentinel) on `port` one command, again every 50 ms, until `done` likes its answer; fails
 * after `timeout`.
 */
export const redisAnswer = (
  port: number,
  command: ReadonlyArray<string>,
  done: (answer: unknown) => boolean,
  what: string,
  timeout: Duration.DurationInput = "20 seconds"
) =>
  Effect.tryPromise({
    try: async () => {
      const { Redis } = await import("ioredis")
      const probe = new Redis({ port, host: "127.0.0.1", lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
      probe.on("error", () => {})
      try {
        await probe.connect()
        const answer = await probe.call(command[0]!, ...command.slice(1))
        if (!done(answer)) throw new Error("not yet")
        return answer
      } finally {
        probe.disconnect()
      }
    },
    catch: () => new Error(`not yet: ${what}`)
  }).pipe(
    Effect.retry(Schedule.spaced("50 millis")),
    Effect.timeoutFail({ duration: timeout, onTimeout: () => new Error(`timed out: ${what}`) })
  )

export interface OwnRedis {
  readonly url: string
  readonly kill: Effect.Effect<void>
  readonly start: Effect.Effect<void, Error>
  /** SIGSTOP: connections stay open, nothing answers. */
  readonly stall: Effect.Effect<void>
  readonly resume: Effect.Effect<void>
}

export const ownRedis: Effect.Effect<OwnRedis, Error, Scope.Scope> = Effect.gen(function*() {
  const port = yield* freePort
  let current: ChildProcess | undefined
  const kill = Effect.suspend(() => {
    const child = current
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return Effect.void
    child.kill("SIGKILL")
    return Effect.asVoid(exitOf(child))
  })
  const start = Effect.gen(function*() {
    current = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
      stdio: "ignore"
    })
    yield* redisAnswer(port, ["PING"], (answer) => answer === "PONG", `redis on ${port} to start`, "10 seconds")
  })
  const stall = Effect.sync(() => void current?.kill("SIGSTOP"))
  const resume = Effect.sync(() => void current?.kill("SIGCONT"))
  yield* Effect.addFinalizer(() => Effect.zipRight(resume, kill))
  yield* start
  return { url: `redis://127.0.0.1:${port}`, kill, start, stall, resume }
})
