import * as FileSystem from "@effect/platform/FileSystem"
import type { PlatformError } from "@effect/platform/Error"
import { Clock, Config, Duration, Effect, Layer, Option, Stream } from "effect"
import * as Crypto from "node:crypto"
import * as NodeFs from "node:fs/promises"
import * as NodePath from "node:path"
import { type ByteRange, Storage, StorageError, type StoredFile } from "../../domain/ports/Storage.js"
import { checkRange, clampRange, segments } from "./Keys.js"

/** `STORAGE_DIR` when set, otherwise `<DATA_DIR>/attachments`, as an absolute path. */
export const DiskConfig = Config.all({
  dataDir: Config.string("DATA_DIR").pipe(Config.withDefault("./data")),
  storageDir: Config.option(Config.string("STORAGE_DIR"))
}).pipe(Config.map(({ dataDir, storageDir }) =>
  NodePath.resolve(Option.getOrElse(storageDir, () => NodePath.join(dataDir, "attachments")))
))

// Older temporary files belong to a process that died mid-upload; younger ones may be a live
// upload of another instance sharing the directory.
const staleAfter = Duration.toMillis("24 hours")

const isNotFound = (error: PlatformError) => error._tag === "SystemError" && error.reason === "NotFound"

const hasCode = (cause: unknown, codes: ReadonlyArray<string>) =>
  cause instanceof Error && "code" in cause && typeof cause.code === "string" && codes.includes(cause.code)

const failWith = (message: string) => (cause: unknown) => new StorageError({ message, cause })

/**
 * Files under `root`, one per key (`<root>/<uuid>/original`). A put writes `<root>/.tmp/<random>`
 * and renames it into place once complete and synced, so readers never see a partial file.
 */
export const make = (root: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const tmpDir = NodePath.join(root, ".tmp")
    yield* fs.makeDirectory(tmpDir, { recursive: true }).pipe(
      Effect.mapError(failWith(`Cannot create the storage directory ${tmpDir}`))
    )

    yield* Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const names = yield* fs.readDirectory(tmpDir)
      yield* Effect.forEach(names, (name) => {
        const path = NodePath.join(tmpDir, name)
        return Effect.flatMap(fs.stat(path), (info) =>
          Option.exists(info.mtime, (mtime) => now - mtime.getTime() > staleAfter)
            ? fs.remove(path, { force: true, recursive: true })
            : Effect.void)
      }, { discard: true })
    }).pipe(Effect.catchAll((error) => Effect.logWarning("Storage: could not sweep temporary files", error)))

    const pathOf = (key: string) => Effect.map(segments(key), (parts) => NodePath.join(root, ...parts))

    const removeIfEmpty = (dir: string) =>
      Effect.tryPromise({ try: () => NodeFs.rmdir(dir), catch: (cause) => cause }).pipe(
        Effect.as(true),
        Effect.catchIf((cause) => hasCode(cause, ["ENOTEMPTY", "EEXIST", "ENOENT"]), () => Effect.succeed(false)),
        Effect.mapError(failWith(`Cannot remove the directory ${dir}`))
      )

    const put = Effect.fn("DiskStorage.put")(function*<E>(key: string, body: Stream.Stream<Uint8Array, E>) {
      const target = yield* pathOf(key)
      const temp = NodePath.join(tmpDir, Crypto.randomUUID())
      const write = Effect.scoped(Effect.gen(function*() {
        const file = yield* fs.open(temp, { flag: "wx" }).pipe(Effect.mapError(failWith(`Cannot create ${temp}`)))
        const size = yield* Stream.runFoldEffect(body, 0, (size, chunk) =>
          // An empty chunk is nothing to write (and writeAll would take its 0 bytes written for a failure).
          chunk.byteLength === 0 ? Effect.succeed(size) : file.writeAll(chunk).pipe(
            Effect.mapError(failWith(`Cannot write ${temp}`)),
            Effect.as(size + chunk.byteLength)
          ))
        yield* file.sync.pipe(Effect.mapError(failWith(`Cannot sync ${temp}`)))
        return size
      }))
      // A concurrent remove may take an emptied key directory away between mkdir and rename.
      const commit = fs.makeDirectory(NodePath.dirname(target), { recursive: true }).pipe(
        Effect.zipRight(fs.rename(temp, target)),
        Effect.retry({ times: 2, while: isNotFound }),
        Effect.mapError(failWith(`Cannot move ${temp} to ${target}`))
      )
      return yield* Effect.uninterruptibleMask((restore) =>
        restore(write).pipe(
          Effect.tap(() => commit),
          Effect.map((size) => ({ size })),
          Effect.onError(() => Effect.ignoreLogged(fs.remove(temp, { force: true })))
        )
      )
    })

    const get = Effect.fn("DiskStorage.get")(function*(key: string, range?: ByteRange) {
      const path = yield* pathOf(key)
      yield* checkRange(range)
      const info = yield* fs.stat(path).pipe(
        Effect.map(Option.some),
        Effect.catchIf(isNotFound, () => Effect.succeedNone),
        Effect.mapError(failWith(`Cannot stat ${path}`))
      )
      if (Option.isNone(info) || info.value.type !== "File") return Option.none<StoredFile>()
      const size = Number(info.value.size)
      const bytes = range === undefined
        ? fs.stream(path)
        : Option.match(clampRange(range, size), {
          onNone: () => Stream.empty,
          onSome: ({ end, start }) => fs.stream(path, { offset: start, bytesToRead: end - start + 1 })
        })
      return Option.some<StoredFile>({ size, body: Stream.mapError(bytes, failWith(`Cannot read ${path}`)) })
    })

    const remove = Effect.fn("DiskStorage.remove")(function*(key: string) {
      const path = yield* pathOf(key)
      yield* fs.remove(path, { force: true }).pipe(Effect.mapError(failWith(`Cannot remove ${path}`)))
      let dir = NodePath.dirname(path)
      while (dir !== root && (yield* removeIfEmpty(dir))) dir = NodePath.dirname(dir)
    })

    yield* Effect.logInfo(`Storage: disk at ${root}`)
    return Storage.of({ put, get, remove })
  })

export const layer = Layer.effect(Storage, Effect.flatMap(DiskConfig, make))
