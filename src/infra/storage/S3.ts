import {
  DeleteObjectCommand,
  GetObjectCommand,
  type GetObjectCommandOutput,
  HeadBucketCommand,
  HeadObjectCommand,
  S3Client,
  type S3ClientConfig,
  S3ServiceException
} from "@aws-sdk/client-s3"
import { Upload } from "@aws-sdk/lib-storage"
import * as NodeStream from "@effect/platform-node/NodeStream"
import { Config, ConfigError, Deferred, Effect, Either, Layer, Option, Redacted, Stream } from "effect"
import { Readable } from "node:stream"
import { type ByteRange, Storage, StorageError, type StoredFile } from "../../domain/ports/Storage.js"
import { checkRange, segments } from "./Keys.js"

export interface S3Settings {
  readonly bucket: string
  readonly region: string
  /** For S3-compatible servers (MinIO, s3rver...); none for AWS. */
  readonly endpoint: Option.Option<string>
  /** None: the SDK's default chain (environment, profile, instance role). */
  readonly credentials: Option.Option<{
    readonly accessKeyId: Redacted.Redacted<string>
    readonly secretAccessKey: Redacted.Redacted<string>
  }>
  readonly forcePathStyle: boolean
  /** Put before every key: `""` or a folder ending in `/`. */
  readonly prefix: string
}

export const S3Config: Config.Config<S3Settings> = Config.all({
  bucket: Config.string("S3_BUCKET"),
  region: Config.string("S3_REGION").pipe(Config.withDefault("us-east-1")),
  endpoint: Config.option(Config.string("S3_ENDPOINT")),
  accessKeyId: Config.option(Config.redacted("S3_ACCESS_KEY_ID")),
  secretAccessKey: Config.option(Config.redacted("S3_SECRET_ACCESS_KEY")),
  forcePathStyle: Config.option(Config.boolean("S3_FORCE_PATH_STYLE")),
  prefix: Config.string("S3_PREFIX").pipe(Config.withDefault(""))
}).pipe(Config.mapOrFail((c) => {
  if (Option.isSome(c.accessKeyId) !== Option.isSome(c.secretAccessKey)) {
    return Either.left(ConfigError.InvalidData(
      ["S3_ACCESS_KEY_ID"],
      "S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY are set together or not at all"
    ))
  }
  const prefix = c.prefix.replace(/^\/+|\/+$/g, "")
  return Either.right({
    bucket: c.bucket,
    region: c.region,
    endpoint: c.endpoint,
    credentials: Option.zipWith(c.accessKeyId, c.secretAccessKey, (accessKeyId, secretAccessKey) => ({
      accessKeyId,
      secretAccessKey
    })),
    forcePathStyle: Option.getOrElse(c.forcePathStyle, () => Option.isSome(c.endpoint)),
    prefix: prefix === "" ? "" : `${prefix}/`
  })
}))

/** One line for logs and error messages: the service's error name and status, or the network error. */
const describe = (cause: unknown): string => {
  if (cause instanceof S3ServiceException) {
    const status = cause.$metadata.httpStatusCode
    return status === undefined ? cause.name : `${cause.name} (HTTP ${status})`
  }
  if (cause instanceof Error) {
    const code = "code" in cause && typeof cause.code === "string" ? cause.code : undefined
    return cause.message !== "" ? cause.message : code ?? cause.name
  }
  return String(cause)
}

const isNotFound = (cause: unknown) =>
  cause instanceof S3ServiceException &&
  (cause.name === "NoSuchKey" || cause.name === "NotFound" ||
    (cause.$metadata.httpStatusCode === 404 && cause.name !== "NoSuchBucket"))

const isInvalidRange = (cause: unknown) =>
  cause instanceof S3ServiceException && (cause.name === "InvalidRange" || cause.$metadata.httpStatusCode === 416)

/** The whole object's size: after the slash of `Content-Range: bytes 0-9/1234`, or the length of a full read. */
const sizeOf = (response: GetObjectCommandOutput, range: ByteRange | undefined): Option.Option<number> => {
  if (range === undefined) return Option.fromNullable(response.ContentLength)
  const total = /^bytes \d+-\d+\/(\d+)$/.exec(response.ContentRange ?? "")?.[1]
  return total === undefined ? Option.none() : Option.some(Number(total))
}

const bodyOf = (response: GetObjectCommandOutput, key: string): Stream.Stream<Uint8Array, StorageError> => {
  const body = response.Body
  const onError = (cause: unknown) => new StorageError({ message: `S3 read of ${key} failed: ${describe(cause)}`, cause })
  if (body === undefined) return Stream.empty
  if (body instanceof Readable) return NodeStream.fromReadable(() => body, onError)
  return Stream.fromReadableStream<Uint8Array, StorageError>({ evaluate: () => body.transformToWebStream(), onError })
}

const discard = (response: GetObjectCommandOutput) =>
  Effect.sync(() => {
    if (response.Body instanceof Readable) response.Body.destroy()
  })

// S3-compatible servers often reject the SDK's default extra checksums (CRC32 on every request).
const compatibleChecksums: Pick<S3ClientConfig, "requestChecksumCalculation" | "responseChecksumValidation"> = {
  requestChecksumCalculation: "WHEN_REQUIRED",
  responseChecksumValidation: "WHEN_REQUIRED"
}

const clientConfig = (settings: S3Settings): S3ClientConfig => ({
  region: settings.region,
  forcePathStyle: settings.forcePathStyle,
  ...Option.match(settings.endpoint, {
    onNone: () => ({}),
    onSome: (endpoint) => ({ endpoint, ...compatibleChecksums })
  }),
  ...Option.match(settings.credentials, {
    onNone: () => ({}),
    onSome: ({ accessKeyId, secretAccessKey }) => ({
      credentials: { accessKeyId: Redacted.value(accessKeyId), secretAccessKey: Redacted.value(secretAccessKey) }
    })
  })
})

/**
 * Objects in one bucket, one per key (under the prefix). Puts go through lib-storage's `Upload`
 * (multipart above 5 MB), so an object exists only once its upload completed.
 */
export const make = (settings: S3Settings) =>
  Effect.gen(function*() {
    const { bucket: Bucket, prefix } = settings
    const where = Option.getOrElse(settings.endpoint, () => `AWS ${settings.region}`)
    const client = yield* Effect.acquireRelease(
      Effect.try({
        try: () => new S3Client(clientConfig(settings)),
        catch: (cause) => new StorageError({ message: `S3 client for ${where}: ${describe(cause)}`, cause })
      }),
      (client) => Effect.sync(() => client.destroy())
    )

    /** An SDK call, aborted when interrupted; its error left as the SDK made it. */
    const call = <A>(f: (abortSignal: AbortSignal) => Promise<A>) =>
      Effect.tryPromise({ try: f, catch: (cause) => cause })

    const failed = (what: string) => (cause: unknown) =>
      new StorageError({ message: `S3 ${what} failed: ${describe(cause)}`, cause })

    yield* call((abortSignal) => client.send(new HeadBucketCommand({ Bucket }), { abortSignal })).pipe(
      Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error("no answer within 10 s") }),
      Effect.mapError((cause) =>
        new StorageError({ message: `S3 bucket ${Bucket} not reachable at ${where}: ${describe(cause)}`, cause })
      )
    )

    const objectKey = (key: string) => Effect.map(segments(key), () => prefix + key)

    const deleteObject = (Key: string) =>
      call((abortSignal) => client.send(new DeleteObjectCommand({ Bucket, Key }), { abortSignal })).pipe(
        Effect.asVoid,
        Effect.catchIf(isNotFound, () => Effect.void),
        Effect.mapError(failed(`DeleteObject ${Key}`))
      )

    const put = Effect.fn("S3Storage.put")(
      function*<E>(key: string, body: Stream.Stream<Uint8Array, E>, options: { readonly contentType: string }) {
        const Key = yield* objectKey(key)
        const bodyFailure = yield* Deferred.make<never, E>()
        let size = 0
        const readable = yield* NodeStream.toReadable(body.pipe(
          Stream.tap((chunk) => Effect.sync(() => void (size += chunk.byteLength))),
          Stream.tapError((error) => Deferred.fail(bodyFailure, error))
        ))
        const upload = yield* Effect.try({
          try: () => new Upload({ client, params: { Bucket, Key, Body: readable, ContentType: options.contentType } }),
          catch: failed(`upload of ${Key}`)
        })
        const outcome = yield* Effect.sync(() =>
          upload.done().then(() => Either.right(undefined), (error: unknown) => Either.left(error))
        )
        // Interrupted: stop the body (lib-storage then aborts a multipart upload) and wait for the
        // upload to settle; if its last request completed the object anyway, take it away again.
        const cancel = Effect.gen(function*() {
          yield* Effect.sync(() => readable.destroy())
          const settled = yield* Effect.promise(() => outcome).pipe(Effect.timeoutOption("30 seconds"))
          if (Option.isSome(settled) && Either.isRight(settled.value)) yield* Effect.ignoreLogged(deleteObject(Key))
        })
        const result = yield* Effect.promise(() => outcome).pipe(
          Effect.onInterrupt(() => cancel),
          Effect.ensuring(Effect.sync(() => readable.destroy()))
        )
        if (Either.isLeft(result)) {
          const bodyFailed = yield* Deferred.poll(bodyFailure)
          if (Option.isSome(bodyFailed)) return yield* bodyFailed.value
          return yield* failed(`upload of ${Key}`)(result.left)
        }
        return { size }
      }
    )

    const get = Effect.fn("S3Storage.get")(function*(key: string, range?: ByteRange) {
      const Key = yield* objectKey(key)
      yield* checkRange(range)
      const response = yield* call((abortSignal) =>
        client.send(
          new GetObjectCommand({
            Bucket,
            Key,
            ...(range === undefined ? {} : { Range: `bytes=${range.start}-${range.end}` })
          }),
          { abortSignal }
        )
      ).pipe(Effect.either)
      if (Either.isLeft(response)) {
        const cause = response.left
        if (isNotFound(cause)) return Option.none<StoredFile>()
        if (range !== undefined && isInvalidRange(cause)) return yield* emptyRange(Key)
        return yield* failed(`GetObject ${Key}`)(cause)
      }
      const size = sizeOf(response.right, range)
      if (Option.isNone(size)) {
        yield* discard(response.right)
        return yield* new StorageError({ message: `S3 GetObject ${Key} answered without the object's size` })
      }
      return Option.some<StoredFile>({ size: size.value, body: bodyOf(response.right, Key) })
    })

    /** A range starting past the end (416 from S3): no bytes, but the size still, as the disk gives. */
    const emptyRange = (Key: string) =>
      call((abortSignal) => client.send(new HeadObjectCommand({ Bucket, Key }), { abortSignal })).pipe(
        Effect.map((head) => Option.some<StoredFile>({ size: head.ContentLength ?? 0, body: Stream.empty })),
        Effect.catchIf(isNotFound, () => Effect.succeedNone),
        Effect.mapError(failed(`HeadObject ${Key}`))
      )

    const remove = Effect.fn("S3Storage.remove")(function*(key: string) {
      yield* deleteObject(yield* objectKey(key))
    })

    yield* Effect.logInfo(`Storage: S3 bucket ${Bucket} at ${where}`)
    return Storage.of({ put, get, remove })
  })

export const layer = Layer.scoped(Storage, Effect.flatMap(S3Config, make))
