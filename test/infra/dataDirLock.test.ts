import { expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
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
