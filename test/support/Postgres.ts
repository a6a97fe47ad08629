import { Effect, Schedule, type Scope } from "effect"
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { exitOf } from "./Instances.js"

const bin = (name: string) => Path.join("/usr/lib/postgresql/15/bin", name)

/** Postgres refuses to run as root: its processes run as the `postgres` user when the tests run as root. */
const asPostgres = (command: string, args: ReadonlyArray<string>): [string, Array<string>] =>
  process.getuid?.() === 0 ? ["setpriv", ["--reuid=postgres", "--regid=postgres", "--init-groups", command, ...args]] : [command, [...args]]

export interface OwnPostgres {
  readonly url: string
  /** Fast shutdown; resolves once the server is gone. */
  readonly stop: Effect.Effect<void>
  /** Starts it again on the same port and data; resolves once it accepts connections. */
  readonly start: Effect.Effect<void, Error>
}

/**
 * A Postgres of the test's own (initdb in a temporary directory, its own port), that the test may stop and
 * start again; removed with the scope.
 */
export const ownPostgres = (port: number): Effect.Effect<OwnPostgres, Error, Scope.Scope> =>
  Effect.gen(function*() {
    const dir = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "chat-pg-"))
        if (process.getuid?.() === 0) execFileSync("chown", ["postgres:postgres", dir])
        return dir
      }),
      (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
    )
    const data = Path.join(dir, "data")
    yield* Effect.try(() => {
      const [command, args] = asPostgres(bin("initdb"), ["-D", data, "-U", "postgres", "--auth=trust", "--no-sync"])
      execFileSync(command, args, { stdio: "ignore" })
    })
    let child: ChildProcess | undefined
    const ready = Effect.try(() => execFileSync(bin("pg_isready"), ["-h", "127.0.0.1", "-p", String(port)], { stdio: "ignore" })).pipe(
      Effect.retry(Schedule.spaced("50 millis")),
      Effect.timeoutFail({ duration: "20 seconds", onTimeout: () => new Error(`Postgres on ${port} did not start`) })
    )
    const start = Effect.suspend(() => {
      const [command, args] = asPostgres(bin("postgres"), [
        "-D", data, "-p", String(port), "-k", dir, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
        "-c", "synchronous_commit=off", "-c", "full_page_writes=off"
      ])
      child = spawn(command, args, { stdio: "ignore" })
      return ready
    }).pipe(Effect.asVoid)
    const stop = Effect.suspend(() => {
      const running = child
      if (running === undefined || running.exitCode !== null || running.signalCode !== null) return Effect.void
      running.kill("SIGINT")
      return Effect.asVoid(exitOf(running))
    })
    yield* Effect.addFinalizer(() => stop)
    yield* start
    return { url: `postgres://postgres@127.0.0.1:${port}/postgres`, stop, start }
  })
