import { Effect } from "effect"
import { spawn } from "node:child_process"
import * as Path from "node:path"
import { pathToFileURL } from "node:url"

// Absolute, so that a script also runs from another working directory (one with its own `.env`).
const tsx = pathToFileURL(Path.resolve("node_modules/tsx/dist/loader.mjs")).href

export interface Finished {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs a script of the project (`src/seed.ts`, say) with tsx in a process of its own, to its end. */
export const runScript = (
  script: string,
  env: Record<string, string>,
  options: { readonly args?: ReadonlyArray<string>; readonly cwd?: string } = {}
) =>
  Effect.async<Finished>((resume) => {
    const child = spawn(process.execPath, ["--import", tsx, Path.resolve(script), ...(options.args ?? [])], {
      env: { PATH: process.env.PATH ?? "", ...env },
      cwd: options.cwd ?? process.cwd(),
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk: Buffer) => void (stdout += chunk.toString()))
    child.stderr.on("data", (chunk: Buffer) => void (stderr += chunk.toString()))
    child.once("close", (code) => resume(Effect.succeed({ code, stdout, stderr })))
    return Effect.sync(() => void child.kill("SIGKILL"))
  })
