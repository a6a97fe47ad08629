import type * as Headers from "@effect/platform/Headers"
import * as Multipart from "@effect/platform/Multipart"
import { Chunk, Effect, Inspectable, Option, Stream } from "effect"
import * as MP from "multipasta"
import { nextChunk } from "../domain/Streams.js"

/**
 * `multipart/form-data` parts read from a body, on the parser `@effect/platform` uses (multipasta), with
 * the same limits (`Multipart.withLimitsStream`) and part types (`Multipart.isFile`, `isField`).
 *
 * Not `Multipart.makeChannel`: when a body ends short of its closing boundary in certain places (an empty
 * body, a part's headers cut off, a file part's bytes cut off) that channel's parser reports neither done
 * nor an error, and the channel asks it again, forever, without yielding the thread for long: one such
 * request held a core and grew the heap until the process was restarted. Here every pull either feeds the
 * parser one more chunk of the body or settles: a body that ends before its closing boundary is a `Parse`
 * failure (`EndNotReached`) of the parts and of a file part still being read.
 */
export const parts = (
  headers: Headers.Headers,
  body: Stream.Stream<Uint8Array, Multipart.MultipartError>
): Stream.Stream<Multipart.Part, Multipart.MultipartError> =>
  Stream.unwrapScoped(Effect.gen(function*() {
    const config = yield* Multipart.makeConfig(headers)
    const pull = yield* Stream.toPull(body)
    const state: Reading = { failure: undefined, closed: false, ended: false, found: [] }
    let file: FileReading | undefined
    const parser = MP.make({
      ...config,
      onField(info, value) {
        state.found.push(new Field(info.name, info.contentType, MP.decodeField(info, value)))
      },
      onFile(info) {
        const reading: FileReading = { chunks: [], finished: false }
        file = reading
        state.found.push(new File(info, fileContent(state, reading, feed)))
        return (chunk) => {
          if (chunk === null) reading.finished = true
          else reading.chunks.push(chunk)
        }
      },
      onError(error) {
        // The first error is the one to report: the parser goes on after it.
        state.failure ??= convert(error)
      },
      onDone() {
        state.closed = true
      }
    })

    /** One more chunk of the body into the parser, or, at its end, the verdict on what was read. */
    const feed: Effect.Effect<void, Multipart.MultipartError> = Effect.flatMap(nextChunk(pull), (next) =>
      Effect.sync(() => {
        if (Option.isSome(next)) {
          Chunk.forEach(next.value, (bytes) => parser.write(bytes))
          return
        }
        state.ended = true
        parser.end()
        if (!state.closed || (file !== undefined && !file.finished)) state.failure ??= endNotReached()
      }))

    const pullParts: Effect.Effect<Chunk.Chunk<Multipart.Part>, Option.Option<Multipart.MultipartError>> = Effect
      .suspend(() => {
        // A form found bad (a limit passed, a part malformed) is bad whole: what was found with it is dropped.
        if (state.failure !== undefined) return Effect.fail(Option.some(state.failure))
        if (state.found.length > 0) {
          const found = Chunk.unsafeFromArray(state.found)
          state.found = []
          return Effect.succeed(found)
        }
        if (state.closed || state.ended) return Effect.fail(Option.none())
        return Effect.zipRight(Effect.mapError(feed, Option.some), pullParts)
      })
    return Stream.repeatEffectChunkOption(pullParts)
  }))

interface Reading {
  failure: Multipart.MultipartError | undefined
  /** The closing boundary was read. */
  closed: boolean
  /** The body has no more bytes. */
  ended: boolean
  /** Parts read and not yet handed on. */
  found: Array<Multipart.Part>
}

interface FileReading {
  chunks: Array<Uint8Array>
  finished: boolean
}

/** A file part's bytes as the parser finds them, reading the body further as they are pulled. */
const fileContent = (
  state: Reading,
  file: FileReading,
  feed: Effect.Effect<void, Multipart.MultipartError>
): Stream.Stream<Uint8Array, Multipart.MultipartError> => {
  const pull: Effect.Effect<Chunk.Chunk<Uint8Array>, Option.Option<Multipart.MultipartError>> = Effect.suspend(() => {
    if (state.failure !== undefined) return Effect.fail(Option.some(state.failure))
    if (file.chunks.length > 0) {
      const chunks = Chunk.unsafeFromArray(file.chunks)
      file.chunks = []
      return Effect.succeed(chunks)
    }
    if (file.finished) return Effect.fail(Option.none())
    if (state.closed || state.ended) return Effect.fail(Option.some(endNotReached()))
    return Effect.zipRight(Effect.mapError(feed, Option.some), pull)
  })
  return Stream.repeatEffectChunkOption(pull)
}

const endNotReached = () => new Multipart.MultipartError({ reason: "Parse", cause: { _tag: "EndNotReached" } })

const convert = (error: MP.MultipartError): Multipart.MultipartError => {
  if (error._tag !== "ReachedLimit") return new Multipart.MultipartError({ reason: "Parse", cause: error })
  const reason = ({
    MaxParts: "TooManyParts",
    MaxFieldSize: "FieldTooLarge",
    MaxPartSize: "FileTooLarge",
    MaxTotalSize: "BodyTooLarge"
  } as const)[error.limit]
  return new Multipart.MultipartError({ reason, cause: error })
}

class Field extends Inspectable.Class implements Multipart.Field {
  readonly [Multipart.TypeId]: Multipart.TypeId = Multipart.TypeId
  readonly _tag = "Field"
  constructor(readonly key: string, readonly contentType: string, readonly value: string) {
    super()
  }
  toJSON(): unknown {
    return { _id: "@effect/platform/Multipart/Part", _tag: "Field", key: this.key, contentType: this.contentType }
  }
}

class File extends Inspectable.Class implements Multipart.File {
  readonly [Multipart.TypeId]: Multipart.TypeId = Multipart.TypeId
  readonly _tag = "File"
  readonly key: string
  readonly name: string
  readonly contentType: string
  readonly contentEffect: Effect.Effect<Uint8Array, Multipart.MultipartError>
  constructor(info: MP.PartInfo, readonly content: Stream.Stream<Uint8Array, Multipart.MultipartError>) {
    super()
    this.key = info.name
    this.name = info.filename ?? info.name
    this.contentType = info.contentType
    this.contentEffect = Effect.map(Stream.runCollect(content), (chunks) => Buffer.concat(Chunk.toReadonlyArray(chunks)))
  }
  toJSON(): unknown {
    return { _id: "@effect/platform/Multipart/Part", _tag: "File", key: this.key, name: this.name, contentType: this.contentType }
  }
}
