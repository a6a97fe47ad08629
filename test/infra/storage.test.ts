import { HeadObjectCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3"
import { FileSystem } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { expect, layer, type Vitest } from "@effect/vitest"
import {
  Chunk,
  ConfigProvider,
  Context,
  Data,
  Deferred,
  Effect,
  Fiber,
  Layer,
  Logger,
  LogLevel,
  Option,
  Stream
} from "effect"
import * as Crypto from "node:crypto"
import * as NodePath from "node:path"
import { localS3 } from "../support/S3.js"
import { type ByteRange, Storage, type StoredFile } from "../../src/domain/ports/Storage.js"
import * as Disk from "../../src/infra/storage/Disk.js"
import * as S3 from "../../src/infra/storage/S3.js"
import * as StorageLive from "../../src/infra/storage/Storage.js"

/** What a test can see of the backend behind `Storage`, without going through it. */
class Backend extends Context.Tag("Test/StorageBackend")<Backend, {
  readonly kind: "disk" | "s3"
  /** The configuration the storage layer was built from. */
  readonly config: Record<string, string>
  /** Every stored name: files and directories on disk (temporary ones aside), object keys on S3. */
  readonly entries: Effect.Effect<ReadonlyArray<string>>
  /** Temporary files of puts (disk only). */
  readonly temporary: Effect.Effect<ReadonlyArray<string>>
}>() {}

const withConfig = (config: Record<string, string>) =>
  Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(config))))

/** `StorageLive.layer` (the selection main uses) on a fresh temporary directory: no `S3_BUCKET`, so disk. */
const DiskBackend = Layer.unwrapScoped(Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const dataDir = yield* fs.makeTempDirectoryScoped({ prefix: "storage-test-" })
  const root = NodePath.join(dataDir, "attachments")
  const config = { DATA_DIR: dataDir }
  const backend = Backend.of({
    kind: "disk",
    config,
    entries: fs.readDirectory(root, { recursive: true }).pipe(
      Effect.map((names) => names.filter((name) => !name.startsWith(".tmp"))),
      Effect.orDie
    ),
    temporary: Effect.orDie(fs.readDirectory(NodePath.join(root, ".tmp")))
  })
  return Layer.merge(Layer.succeed(Backend, backend), StorageLive.layer.pipe(Layer.provide(withConfig(config))))
}))

/** `StorageLive.layer` with `S3_BUCKET` set, on an s3rver started for the suite. */
const S3Backend = Layer.unwrapScoped(Effect.gen(function*() {
  const s3 = yield* localS3("attachments")
  const endpoint = s3.S3_ENDPOINT
  const config = { ...s3, S3_PREFIX: "/chat" }
  const client = yield* Effect.acquireRelease(
    Effect.sync(() =>
      new S3Client({
        region: "us-east-1",
        endpoint,
        forcePathStyle: true,
        credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" }
      })
    ),
    (client) => Effect.sync(() => client.destroy())
  )
  const backend = Backend.of({
    kind: "s3",
    config,
    entries: Effect.promise(() => client.send(new ListObjectsV2Command({ Bucket: "attachments" }))).pipe(
      Effect.map((listing) => (listing.Contents ?? []).flatMap((object) => object.Key ?? []))
    ),
    temporary: Effect.succeed([])
  })
  return Layer.mergeAll(
    Layer.succeed(Backend, backend),
    Layer.succeed(RawS3, client),
    StorageLive.layer.pipe(Layer.provide(withConfig(config)))
  )
}))

class RawS3 extends Context.Tag("Test/RawS3")<RawS3, S3Client>() {}

const quiet = Layer.merge(NodeContext.layer, Logger.minimumLogLevel(LogLevel.Warning))

class BodyBroke extends Data.TaggedError("BodyBroke")<{}> {}

const MB = 1024 * 1024
const random = (size: number) => new Uint8Array(Crypto.randomBytes(size))
const newKey = (name = "original") => `${Crypto.randomUUID()}/${name}`

/** `data` in pieces of `size` bytes (the last one shorter). */
const chunked = (data: Uint8Array, size: number) =>
  Stream.fromIterable(Array.from({ length: Math.ceil(data.length / size) }, (_, i) => data.subarray(i * size, (i + 1) * size)))

const readAll = (file: StoredFile) =>
  Effect.map(Stream.runCollect(file.body), (chunks) => new Uint8Array(Buffer.concat(Chunk.toArray(chunks))))

const read = (key: string, range?: ByteRange) =>
  Effect.gen(function*() {
    const storage = yield* Storage
    const file = yield* storage.get(key, range)
    if (Option.isNone(file)) return Option.none<{ size: number; bytes: Uint8Array }>()
    return Option.some({ size: file.value.size, bytes: yield* readAll(file.value) })
  })

const same = (actual: Uint8Array, expected: Uint8Array) => {
  expect(actual.length).toBe(expected.length)
  expect(Buffer.compare(actual, expected)).toBe(0)
}

/** Nothing of `key`'s directory is left, and no put is half done. */
const nothingUnder = (key: string) =>
  Effect.gen(function*() {
    const backend = yield* Backend
    const [dir] = key.split("/")
    const prefix = backend.kind === "s3" ? `chat/${dir}` : `${dir}`
    expect((yield* backend.entries).filter((entry) => entry.startsWith(prefix))).toEqual([])
    expect(yield* backend.temporary).toEqual([])
  })

const contract = (it: Vitest.MethodsNonLive<Storage | Backend, true>) => {
  it.effect("round trip: a 3 MB body in uneven chunks comes back byte for byte", () =>
    Effect.gen(function*() {
      const storage = yield* Storage
      const data = random(3 * MB)
      const key = newKey()
      expect(yield* storage.put(key, chunked(data, 100_003), { contentType: "image/png" })).toEqual({ size: data.length })
      const file = yield* read(key)
      expect(Option.isSome(file)).toBe(true)
      if (Option.isSome(file)) {
        expect(file.value.size).toBe(data.length)
        same(file.value.bytes, data)
      }
    }))

  it.effect("a body over 5 MB (a multipart upload on S3) comes back byte for byte", () =>
    Effect.gen(function*() {
      const storage = yield* Storage
      const data = random(11 * MB + 17)
      const key = newKey()
      expect(yield* storage.put(key, chunked(data, MB), { contentType: "video/mp4" })).toEqual({ size: data.length })
      const file = yield* read(key)
      expect(Option.map(file, ({ size }) => size)).toEqual(Option.some(data.length))
      if (Option.isSome(file)) same(file.value.bytes, data)
    }))

  it.effect("an empty body is stored as an empty object", () =>
    Effect.gen(function*() {
      const storage = yield* Storage
      const key = newKey()
      expect(yield* storage.put(key, Stream.empty, { contentType: "text/plain" })).toEqual({ size: 0 })
      const file = yield* read(key)
      expect(Option.map(file, ({ bytes, size }) => [size, bytes.length])).toEqual(Option.some([0, 0]))
    }))

  it.effect("empty chunks in a body (a socket may deliver one last) are nothing to store", () =>
    Effect.gen(function*() {
      const storage = yield* Storage
      const key = newKey()
      const data = random(100_000)
      const body = Stream.make(new Uint8Array(0), data.subarray(0, 40_000), new Uint8Array(0), data.subarray(40_000), new Uint8Array(0))
      expect(yield* storage.put(key, body, { contentType: "application/pdf" })).toEqual({ size: data.length })
      const file = yield* read(key)
      if (Option.isSome(file)) same(file.value.bytes, data)
      else expect.fail("stored nothing")
    }))

  it.effect("ranges are inclusive and report the whole size; an end past the end is clamped", () =>
    Effect.gen(function*() {
      const storage = yield* Storage
      const data = random(300_000)
      const key = newKey()
      yield* storage.put(key, chunked(data, 65_000), { contentType: "application/pdf" })
      const cases: ReadonlyArray<readonly [ByteRange, Uint8Array]> = [
        [{ start: 0, end: 9 }, data.subarray(0, 10)],
        [{ start: 150_000, end: 250_123 }, data.subarray(150_000, 250_124)],
        [{ start: 299_999, end: 299_999 }, data.subarray(299_999)],
        [{ start: 299_990, end: 400_000 }, data.subarray(299_990)],
        [{ start: 0, end: 299_999 }, data]
      ]
      for (const [range, expected] of cases) {
        const file = yield* read(key, range)
        expect(Option.map(file, ({ size }) => size)).toEqual(Option.some(300_000))
        if (Option.isSome(file)) same(file.value.bytes, expected)
      }
    }))

  it.effect("a range starting past the end gives no bytes but the size; a malformed range is refused", () =>
    Effect.gen(function*() {
      const storage = yield* Storage
      const key = newKey()
      yield* storage.put(key, Stream.make(new Uint8Array([1, 2, 3])), { contentType: "text/plain" })
      const file = yield* read(key, { start: 3, end: 10 })
      expect(Option.map(file, ({ bytes, size }) => [size, bytes.length])).toEqual(Option.some([3, 0]))
      for (const range of [{ start: 5, end: 4 }, { start: -1, end: 2 }, { start: 0.5, end: 2 }]) {
        const error = yield* Effect.flip(storage.get(key, range))
        expect(error._tag).toBe("StorageError")
      }
      expect(yield* read(newKey(), { start: 0, end: 1 })).toEqual(Option.none())
    }))

  it.effect("a missing key is none, and removing it succeeds", () =>
    Effect.gen(function*() {
      const storage = yield* Storage
      const key = newKey()
      expect(yield* storage.get(key)).toEqual(Option.none())
      yield* storage.remove(key)
      yield* storage.remove(key)
    }))

  it.effect("remove: the object is gone (twice is fine), and so is its emptied directory", () =>
    Effect.gen(function*() {
      const storage = yield* Storage
      const original = newKey("original")
      const thumb = original.replace("original", "thumb")
      yield* storage.put(original, Stream.make(random(1000)), { contentType: "image/jpeg" })
      yield* storage.put(thumb, Stream.make(random(100)), { contentType: "image/webp" })
      yield* storage.remove(original)
      expect(yield* storage.get(original)).toEqual(Option.none())
      expect(Option.map(yield* read(thumb), ({ size }) => size)).toEqual(Option.some(100))
      yield* storage.remove(thumb)
      yield* storage.remove(thumb)
      expect(yield* storage.get(thumb)).toEqual(Option.none())
      yield* nothingUnder(original)
    }))

  it.effect("overwrite: a second put replaces the first", () =>
    Effect.gen(function*() {
      const storage = yield* Storage
      const key = newKey()
      const second = random(2000)
      yield* storage.put(key, Stream.make(random(5000)), { contentType: "text/plain" })
      expect(yield* storage.put(key, chunked(second, 300), { contentType: "text/plain" })).toEqual({ size: 2000 })
      const file = yield* read(key)
      expect(Option.map(file, ({ size }) => size)).toEqual(Option.some(2000))
      if (Option.isSome(file)) same(file.value.bytes, second)
    }))

  it.effect("a body that fails midway fails the put with its own error and leaves nothing behind", () =>
    Effect.gen(function*() {
      const storage = yield* Storage
      for (const size of [300_000, 6 * MB]) {
        const key = newKey()
        const body = Stream.concat(chunked(random(size), 256 * 1024), Stream.fail(new BodyBroke()))
        const error = yield* Effect.flip(storage.put(key, body, { contentType: "image/png" }))
        expect(error._tag).toBe("BodyBroke")
        expect(yield* storage.get(key)).toEqual(Option.none())
        yield* nothingUnder(key)
      }
    }))

  it.effect("an interrupted put leaves nothing behind", () =>
    Effect.gen(function*() {
      const storage = yield* Storage
      for (const size of [300_000, 6 * MB]) {
        const key = newKey()
        const sent = yield* Deferred.make<void>()
        const body = chunked(random(size), 256 * 1024).pipe(
          Stream.concat(Stream.fromEffect(Deferred.succeed(sent, undefined)).pipe(Stream.drain)),
          Stream.concat(Stream.never)
        )
        const fiber = yield* Effect.fork(storage.put(key, body, { contentType: "image/png" }))
        yield* Deferred.await(sent)
        yield* Fiber.interrupt(fiber)
        expect(yield* storage.get(key)).toEqual(Option.none())
        yield* nothingUnder(key)
      }
    }))

  it.effect("keys a server would not make are refused: traversal, absolute, backslash, NUL, empty, hidden", () =>
    Effect.gen(function*() {
      const storage = yield* Storage
      const bad = ["../escape", "a/../../escape", "/etc/passwd", "a\\b", "a\0b", "", "a//b", "a/", ".tmp/x", "a/./b"]
      for (const key of bad) {
        const errors = yield* Effect.all([
          Effect.flip(storage.put(key, Stream.make(new Uint8Array([1])), { contentType: "text/plain" })),
          Effect.flip(storage.get(key)),
          Effect.flip(storage.remove(key))
        ])
        expect(errors.map((error) => error._tag)).toEqual(["StorageError", "StorageError", "StorageError"])
      }
      const backend = yield* Backend
      expect((yield* backend.entries).filter((entry) => entry.includes("escape"))).toEqual([])
    }))
}

layer(Layer.provide(DiskBackend, quiet), { excludeTestServices: true })("Storage on disk", (it) => {
  contract(it)

  it.scoped("files live under <DATA_DIR>/attachments; stale temporary files are swept at start, young ones kept", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const backend = yield* Backend
      const storage = yield* Storage
      const root = NodePath.join(backend.config.DATA_DIR ?? "", "attachments")
      const key = newKey()
      yield* storage.put(key, Stream.make(new Uint8Array([7, 8, 9])), { contentType: "text/plain" })
      expect(Array.from(yield* fs.readFile(NodePath.join(root, key)))).toEqual([7, 8, 9])

      const stale = NodePath.join(root, ".tmp", "stale")
      const young = NodePath.join(root, ".tmp", "young")
      yield* fs.writeFile(stale, new Uint8Array([1]))
      yield* fs.writeFile(young, new Uint8Array([1]))
      const twoDaysAgo = new Date(Date.now() - 2 * 24 * 3600 * 1000)
      yield* fs.utimes(stale, twoDaysAgo, twoDaysAgo)
      yield* Disk.make(root)
      expect(yield* fs.exists(stale)).toBe(false)
      expect(yield* fs.exists(young)).toBe(true)
      yield* fs.remove(young)
    }).pipe(Effect.provide(quiet)))
})

layer(Layer.provide(S3Backend, quiet), { excludeTestServices: true })("Storage on S3 (s3rver)", (it) => {
  contract(it)

  it.effect("objects live under S3_PREFIX with their content type", () =>
    Effect.gen(function*() {
      const storage = yield* Storage
      const client = yield* RawS3
      const key = newKey()
      yield* storage.put(key, Stream.make(new Uint8Array([1, 2])), { contentType: "image/gif" })
      const head = yield* Effect.promise(() =>
        client.send(new HeadObjectCommand({ Bucket: "attachments", Key: `chat/${key}` }))
      )
      expect([head.ContentType, head.ContentLength]).toEqual(["image/gif", 2])
    }))

  it.effect("a missing bucket or an unreachable endpoint fails the layer with one clear line", () =>
    Effect.gen(function*() {
      const backend = yield* Backend
      const endpoint = backend.config.S3_ENDPOINT ?? ""
      const build = (config: Record<string, string>) =>
        Layer.build(S3.layer).pipe(Effect.scoped, Effect.provide(withConfig({ ...backend.config, ...config })), Effect.flip)
      const missing = yield* build({ S3_BUCKET: "missing" })
      expect(missing.message).toBe(`S3 bucket missing not reachable at ${endpoint}: NotFound (HTTP 404)`)
      const away = yield* build({ S3_ENDPOINT: "http://127.0.0.1:1" })
      expect(away.message).toMatch(/^S3 bucket attachments not reachable at http:\/\/127\.0\.0\.1:1: .*ECONNREFUSED/)
    }).pipe(Effect.provide(quiet)))

  it.effect("half the credentials is a configuration error", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Effect.provide(S3.S3Config, withConfig({ S3_BUCKET: "b", S3_ACCESS_KEY_ID: "x" })))
      expect(String(error)).toContain("S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY")
    }))
})
