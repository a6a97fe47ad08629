import { expect, it } from "@effect/vitest"
import { Effect, Fiber, Schedule } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { freePort } from "../support/Instances.js"
import { runScript } from "../support/Processes.js"
import { jwtSecret } from "../support/TestApp.js"
import { tempDir } from "../support/TempDir.js"

const ready = (port: number) =>
  Effect.tryPromise(() => fetch(`http://127.0.0.1:${port}/ready`)).pipe(
    Effect.flatMap((reply) => reply.status === 200 ? Effect.void : Effect.fail(new Error(`status ${reply.status}`))),
    Effect.retry(Schedule.spaced("200 millis")),
    Effect.timeout("40 seconds")
  )

/** `src/main.ts` started in `cwd` until it answers /ready on `port`, then stopped (SIGKILL with the fiber). */
const serveFrom = (cwd: string, env: Record<string, string>, port: number) =>
  Effect.gen(function*() {
    const server = yield* Effect.fork(runScript("src/main.ts", env, { cwd }))
    const answered = yield* ready(port).pipe(Effect.either)
    yield* Fiber.interrupt(server)
    return answered._tag === "Right"
  })

it.live("a .env in the working directory is read at start-up; a variable of the real environment wins over it", () =>
  Effect.gen(function*() {
    const cwd = yield* tempDir("dot-env-")
    const [fromFile, fromEnv] = [yield* freePort, yield* freePort]
    Fs.writeFileSync(
      Path.join(cwd, ".env"),
      [
        "# as copied from .env.example and adjusted",
        `PORT=${fromFile}`,
        "HOST=127.0.0.1",
        "NODE_ENV=test",
        "LOG_LEVEL=Warn",
        `JWT_SECRET=${jwtSecret}`,
        "DATA_DIR=./data",
        ""
      ].join("\n")
    )

    expect(yield* serveFrom(cwd, {}, fromFile)).toBe(true)
    // DATA_DIR=./data from the file, relative to the working directory.
    expect(Fs.existsSync(Path.join(cwd, "data", "pglite"))).toBe(true)

    expect(yield* serveFrom(cwd, { PORT: String(fromEnv) }, fromEnv)).toBe(true)
  }).pipe(Effect.scoped), 120_000)
