import { type ChildProcess, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Path from "node:path"
import { setTimeout as sleep } from "node:timers/promises"

export const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const probe = Net.createServer()
    probe.once("error", reject)
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      probe.close(() => (port > 0 ? resolve(port) : reject(new Error("no free port"))))
    })
  })

/** Runs a command to completion, its output captured; rejects with the output's tail on failure. */
export const run = (command: string, args: ReadonlyArray<string>, cwd: string) =>
  new Promise<string>((resolve, reject) => {
    const child = spawn(command, args, { cwd, stdio: ["ignore", "pipe", "pipe"] })
    let output = ""
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()))
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()))
    child.once("error", reject)
    child.once("close", (code) =>
      code === 0 ? resolve(output) : reject(new Error(`${command} ${args.join(" ")} exited with ${code}:\n${output.slice(-4000)}`))
    )
  })

export interface ServerOptions {
  readonly root: string
  readonly mode: "dist" | "tsx"
  /** Exactly the server's environment (nothing is inherited but PATH, HOME and TMPDIR). */
  readonly env: Record<string, string>
  readonly port: number
  readonly logFile: string
  /** Where `--cpu-prof` writes its profile; no profiling when absent. */
  readonly cpuProfDir?: string
  /** Called when the server exits without having been asked to, with its last lines. */
  readonly onUnexpectedExit?: (exit: { code: number | null; signal: NodeJS.Signals | null }, tail: ReadonlyArray<string>) => void
}

export interface RunningServer {
  readonly url: string
  readonly pid: number
  readonly command: string
  /** The last lines the server wrote (it runs with LOG_LEVEL=Warn, so they are warnings and errors). */
  readonly logTail: () => ReadonlyArray<string>
  readonly logLines: () => number
  readonly running: () => boolean
  /** SIGINT (the runtime interrupts and exits, so a CPU profile gets written), SIGKILL after 20 s. */
  readonly stop: () => Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
}

export const start = async (options: ServerOptions): Promise<RunningServer> => {
  // The production command's V8 settings (package.json start:prod, the Dockerfile): a young generation of
  // 2 × 16 MB and an old generation let grow by half of what lives before it is collected again (V8 would
  // let it reach four times that): memory bounded by what lives, not by the allocation rate.
  const entry = options.mode === "dist"
    ? ["--max-semi-space-size=16", "--heap-growing-percent=50", "dist/src/main.js"]
    : ["--import", "tsx", "src/main.ts"]
  if (options.mode === "dist" && !Fs.existsSync(Path.join(options.root, "dist/src/main.js"))) {
    throw new Error("dist/src/main.js is missing: run npm run build (or use --server=tsx)")
  }
  const profiling = options.cpuProfDir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${options.cpuProfDir}`]
  const args = [...profiling, ...entry]
  const inherited: Record<string, string> = {}
  for (const name of ["PATH", "HOME", "TMPDIR"]) {
    const value = process.env[name]
    if (value !== undefined) inherited[name] = value
  }
  const log = Fs.createWriteStream(options.logFile)
  const child: ChildProcess = spawn(process.execPath, args, {
    cwd: options.root,
    env: { ...inherited, ...options.env },
    stdio: ["ignore", "pipe", "pipe"]
  })
  const tail: Array<string> = []
  let lines = 0
  let partial = ""
  const onData = (chunk: Buffer) => {
    log.write(chunk)
    const text = partial + chunk.toString()
    const parts = text.split("\n")
    partial = parts.pop() ?? ""
    for (const line of parts) {
      lines++
      tail.push(line)
      if (tail.length > 40) tail.shift()
    }
  }
  child.stdout!.on("data", onData)
  child.stderr!.on("data", onData)

  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined
  let stopping = false
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    // "close": the output is drained by then, so the tail is complete.
    child.once("close", (code, signal) => {
      exited = { code, signal }
      if (partial !== "") tail.push(partial)
      if (!stopping) options.onUnexpectedExit?.(exited, [...tail])
      resolve(exited)
    })
  })
  const spawnError = new Promise<never>((_, reject) => child.once("error", reject))
  void spawnError.catch(() => undefined)

  const url = `http://127.0.0.1:${options.port}`
  const stop = async () => {
    stopping = true
    if (exited === undefined) {
      child.kill("SIGINT")
      const killer = setTimeout(() => child.kill("SIGKILL"), 20_000)
      await exit
      clearTimeout(killer)
    }
    await new Promise<void>((resolve) => log.end(resolve))
    return exited!
  }

  const deadline = Date.now() + 90_000
  for (;;) {
    if (exited !== undefined) {
      throw new Error(`The server exited (${exited.code ?? exited.signal}) before it was ready:\n${tail.join("\n")}`)
    }
    if (Date.now() > deadline) {
      await stop()
      throw new Error(`The server was not ready within 90 s:\n${tail.join("\n")}`)
    }
    try {
      const response = await Promise.race([fetch(`${url}/ready`), spawnError])
      if (response.status === 200) break
      await response.arrayBuffer()
    } catch (error) {
      if (!(error instanceof TypeError)) throw error // fetch failed: not listening yet
    }
    await sleep(200)
  }
  return {
    url,
    pid: child.pid!,
    command: `node ${args.join(" ")}`,
    logTail: () => [...tail],
    logLines: () => lines,
    running: () => exited === undefined,
    stop
  }
}

/**
 * A private copy of the app to run, so that other people's edits and builds in the repository during the
 * run change nothing: the working tree's `src/` (or `ref`'s, from git) with its tsconfig and package.json
 * in `dir`, node_modules linked to the repository's, compiled there when `compile`.
 */
export const prepareApp = async (options: {
  readonly root: string
  readonly dir: string
  /** "worktree", or a git revision. */
  readonly source: string
  readonly compile: boolean
}) => {
  const { dir, root } = options
  await Fs.promises.mkdir(dir, { recursive: true })
  const files = ["src", "tsconfig.json", "tsconfig.build.json", "package.json"]
  if (options.source === "worktree") {
    for (const f of files) await Fs.promises.cp(Path.join(root, f), Path.join(dir, f), { recursive: true })
  } else {
    const tar = Path.join(dir, "..", "source.tar")
    await run("git", ["archive", "--format=tar", "-o", tar, options.source, ...files], root)
    await run("tar", ["-xf", tar, "-C", dir], root)
  }
  await Fs.promises.symlink(Path.join(root, "node_modules"), Path.join(dir, "node_modules"), "dir")
  if (options.compile) {
    await run(process.execPath, [Path.join(root, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.build.json"], dir)
  }
  return dir
}
