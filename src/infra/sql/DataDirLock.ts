import { SqlError } from "@effect/sql/SqlError"
import { Context, Data, Effect, Schema, type Scope } from "effect"
import * as Fs from "node:fs"

/** Who holds an embedded database: what the lock file says. */
const Holder = Schema.Struct({
  pid: Schema.Int,
  startedAt: Schema.String,
  port: Schema.optional(Schema.Int)
})
type Holder = typeof Holder.Type

/** Another live process has the embedded database open: a second one would lose acknowledged writes. */
export class DataDirInUse extends Data.TaggedError("DataDirInUse")<{ readonly message: string }> {}

/** The lock this process holds on its embedded database. */
export class DataDirLock extends Context.Tag("Infra/DataDirLock")<DataDirLock, {
  readonly path: string
  /** Adds the port this process serves on, so that a refused second start can name it. */
  readonly record: (details: { readonly port: number }) => Effect.Effect<void>
}>() {}

const decodeHolder = Schema.decodeUnknownOption(Schema.parseJson(Holder))

// PGlite is one session with no locking of its own; the file lock covers other processes, this set
// covers a second open in the same process (whose pid a lock file cannot tell apart).
const heldHere = new Set<string>()

const codeOf = (error: unknown) =>
  typeof error === "object" && error !== null && "code" in error ? error.code : undefined

/** `kill(pid, 0)`: ESRCH means gone; EPERM means alive under another user. */
const isAlive = (pid: number) => {
  // Our own pid in the file is a previous life (a container restarted with the same pid 1).
  if (pid === process.pid || pid <= 0) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return codeOf(error) === "EPERM"
  }
}

const readHolder = (path: string) => {
  try {
    return decodeHolder(Fs.readFileSync(path, "utf8"))
  } catch {
    return decodeHolder("")
  }
}

const describe = (holder: Holder) =>
  `process ${holder.pid} (started ${holder.startedAt}${holder.port === undefined ? "" : `, port ${holder.port}`})`

const createExclusive = (path: string, holder: Holder): boolean => {
  try {
    const fd = Fs.openSync(path, "wx", 0o644)
    try {
      Fs.writeFileSync(fd, JSON.stringify(holder))
      Fs.fsyncSync(fd)
    } finally {
      Fs.closeSync(fd)
    }
    return true
  } catch (error) {
    if (codeOf(error) === "EEXIST") return false
    throw error
  }
}

/**
 * Takes `path` over from a dead holder. Two processes may find the same stale file: taking it over
 * happens under a second, short-lived exclusive file, so that one never deletes the other's new lock.
 */
const takeOverStale = (path: string, stale: string, holder: Holder): boolean => {
  const guard = `${path}.takeover`
  try {
    // A guard left by a process killed in these few lines is old: clear it.
    if (Date.now() - Fs.statSync(guard).mtimeMs > 10_000) Fs.rmSync(guard, { force: true })
  } catch {
    // no guard
  }
  if (!createExclusive(guard, holder)) return false
  try {
    let current: string | undefined
    try {
      current = Fs.readFileSync(path, "utf8")
    } catch {
      current = undefined
    }
    if (current !== undefined && current !== stale) return false
    Fs.rmSync(path, { force: true })
    return createExclusive(path, holder)
  } finally {
    Fs.rmSync(guard, { force: true })
  }
}

const release = (path: string) => {
  heldHere.delete(path)
  const holder = readHolder(path)
  if (holder._tag === "Some" && holder.value.pid === process.pid) Fs.rmSync(path, { force: true })
}

/**
 * An exclusive lock on an embedded database directory for as long as the scope lasts, as Postgres
 * keeps `postmaster.pid`: a lock file created atomically (`O_EXCL`) holding this process's pid. A
 * second process refuses at once, naming the holder; a lock whose holder is dead (killed) is taken
 * over. Released when the scope closes, and on a plain `process.exit`.
 */
export const acquire = (
  path: string,
  what: string
): Effect.Effect<DataDirLock["Type"], DataDirInUse | SqlError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.try({
      try: () => tryLock(path),
      catch: (cause) => new SqlError({ cause, message: `Failed to lock ${what}` })
    }).pipe(
      Effect.flatMap((result) =>
        "heldBy" in result
          ? Effect.fail(
            new DataDirInUse({
              message: `${what} is in use by ${result.heldBy}; one process at a time may open it: ` +
                "stop that one first, or use PostgreSQL (DATABASE_URL) for several"
            })
          )
          : Effect.succeed(result.me)
      ),
      Effect.map((me) => {
        heldHere.add(path)
        const onExit = () => release(path)
        process.once("exit", onExit)
        const lock = DataDirLock.of({
          path,
          record: ({ port }) =>
            Effect.sync(() => {
              const current = readHolder(path)
              if (current._tag === "Some" && current.value.pid === process.pid) {
                Fs.writeFileSync(path, JSON.stringify({ ...me, port }))
              }
            })
        })
        return { lock, onExit }
      })
    ),
    ({ onExit }) =>
      Effect.sync(() => {
        process.removeListener("exit", onExit)
        release(path)
      })
  ).pipe(Effect.map(({ lock }) => lock))

/** A lock file not yet written is a process between its create and its write, unless it is old. */
const isYoung = (path: string) => {
  try {
    return Date.now() - Fs.statSync(path).mtimeMs < 5_000
  } catch {
    return false
  }
}

const tryLock = (path: string): { readonly me: Holder } | { readonly heldBy: string } => {
  if (heldHere.has(path)) return { heldBy: `this process (${process.pid})` }
  const me: Holder = { pid: process.pid, startedAt: new Date().toISOString() }
  for (let attempt = 0; attempt < 5; attempt++) {
    if (createExclusive(path, me)) return { me }
    let text: string
    try {
      text = Fs.readFileSync(path, "utf8")
    } catch {
      continue // released meanwhile: try again
    }
    const holder = decodeHolder(text)
    if (holder._tag === "Some" && isAlive(holder.value.pid)) return { heldBy: describe(holder.value) }
    if (holder._tag === "None" && isYoung(path)) return { heldBy: "another process (starting now)" }
    // A dead holder, or a file cut short by a crash between its creation and its write.
    if (takeOverStale(path, text, me)) return { me }
  }
  return { heldBy: "another process (the lock keeps changing hands)" }
}
