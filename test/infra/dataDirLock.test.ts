import { expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as DataDirLock from "../../src/infra/sql/DataDirLock.js"
import { exitOf, freePort, startInstance } from "../support/Instances.js"
import { runScript } from "../support/Processes.js"
import { admin, jwtSecret, TestServer } from "../support/TestApp.js"
import { tempDir } from "../support/TempDir.js"
import { register, signIn } from "../support/Users.js"

const baseEnv = (dataDir: string, port: number) => ({
  NODE_ENV: "test",
  LOG_LEVEL: "Warn",
  HOST: "127.0.0.1",
  PORT: String(port),
  JWT_SECRET: jwtSecret,
  ADMIN_EMAIL: admin.email,
  ADMIN_PASSWORD: admin.password,
  DATA_DIR: dataDir
})

it.live(
  "one process per embedded database: a second server or a seed refuses at once naming the holder, the first keeps serving; after it stops, or is killed, the next one starts",
  () =>
    Effect.gen(function*() {
      const dataDir = yield* tempDir("data-dir-lock-")
      const first = yield* startInstance({ DATA_DIR: dataDir })
      const user = yield* register("locked").pipe(Effect.provideService(TestServer, first.server))

      // A second server on the same directory: refused at once with one line, exit code 1.
      const second = yield* runScript("src/main.ts", baseEnv(dataDir, yield* freePort)).pipe(
        Effect.timeoutFail({ duration: "30 seconds", onTimeout: () => new Error("the second server kept running") })
      )
      expect(second.code).toBe(1)
      const line = second.stderr.trim()
      expect(line.split("\n")).toHaveLength(1)
      expect(line).toContain(`in use by process ${first.child.pid}`)
      expect(line).toContain(`port ${first.port}`)
      expect(line).toMatch(/started \d{4}-\d\d-\d\dT/)

      // The seed beside the running server says so and writes nothing.
      const seed = yield* runScript("src/seed.ts", { DATA_DIR: dataDir, LOG_LEVEL: "Warn" }).pipe(
        Effect.timeoutFail({ duration: "30 seconds", onTimeout: () => new Error("the seed kept running") })
      )
      expect(seed.code).toBe(1)
      expect(seed.stderr).toContain(`npm run seed refused, nothing written`)
      expect(seed.stderr).toContain(`in use by process ${first.child.pid}`)

      // The first one is unharmed and keeps what it acknowledged.
      expect((yield* first.server.request("GET", "/ready")).status).toBe(200)
      yield* signIn(user.email, user.password).pipe(Effect.provideService(TestServer, first.server))

      // Stopped cleanly: the lock goes with it, the next start takes the directory and sees the data.
      first.child.kill("SIGTERM")
      expect(yield* exitOf(first.child)).toBe(0)
      expect(Fs.existsSync(Path.join(dataDir, "pglite.lock"))).toBe(false)
      const third = yield* startInstance({ DATA_DIR: dataDir })
      yield* signIn(user.email, user.password).pipe(Effect.provideService(TestServer, third.server))

      // Killed: its lock file stays behind, and the next start takes it over (its holder is dead).
      third.child.kill("SIGKILL")
      yield* exitOf(third.child)
      expect(Fs.existsSync(Path.join(dataDir, "pglite.lock"))).toBe(true)
      const fourth = yield* startInstance({ DATA_DIR: dataDir })
      yield* signIn(user.email, user.password).pipe(Effect.provideService(TestServer, fourth.server))
      const holder: unknown = JSON.parse(Fs.readFileSync(Path.join(dataDir, "pglite.lock"), "utf8"))
      expect(holder).toMatchObject({ pid: fourth.child.pid, port: fourth.port })
    }).pipe(Effect.scoped),
  240_000
)

// Above Linux's largest pid_max (2^22): never a live process.
const deadPid = 4_194_304 + 1000

it.live("in one process: a second open of the same directory is refused; dead holders and cut-short files are taken over", () =>
  Effect.gen(function*() {
    const dir = yield* tempDir("data-dir-lock-unit-")
    const path = Path.join(dir, "pglite.lock")
    const acquire = DataDirLock.acquire(path, "The test database")

    yield* Effect.scoped(Effect.gen(function*() {
      yield* acquire
      const again = yield* Effect.flip(Effect.scoped(acquire))
      expect(again._tag).toBe("DataDirInUse")
      expect(again.message).toContain(`this process (${process.pid})`)
    }))
    expect(Fs.existsSync(path)).toBe(false)

    Fs.writeFileSync(path, JSON.stringify({ pid: deadPid, startedAt: "2026-01-01T00:00:00.000Z", port: 1 }))
    yield* Effect.scoped(Effect.gen(function*() {
      yield* acquire
      expect(JSON.parse(Fs.readFileSync(path, "utf8"))).toMatchObject({ pid: process.pid })
    }))

    // A file cut short by a crash between its creation and its write: taken over once it is old...
    Fs.writeFileSync(path, "")
    const old = new Date(Date.now() - 60_000)
    Fs.utimesSync(path, old, old)
    yield* Effect.scoped(acquire)
    // ...but a fresh one is a process starting right now.
    Fs.writeFileSync(path, "")
    const young = yield* Effect.flip(Effect.scoped(acquire))
    expect(young.message).toContain("starting now")
  }).pipe(Effect.scoped))
