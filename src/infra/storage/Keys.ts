import { Effect, Option } from "effect"
import { type ByteRange, StorageError } from "../../domain/ports/Storage.js"

/**
 * The segments of a server-made key (`<uuid>/original`). Anything a server would not make is
 * refused: empty segments (absolute paths), dot segments (`..`, hidden names), backslashes, NUL.
 */
export const segments = (key: string): Effect.Effect<ReadonlyArray<string>, StorageError> => {
  const parts = key.split("/")
  return key.length <= 1024 && !/[\\\0]/.test(key) && parts.every((part) => part !== "" && !part.startsWith("."))
    ? Effect.succeed(parts)
    : Effect.fail(new StorageError({ message: `Refused storage key ${JSON.stringify(key)}` }))
}

export const checkRange = (range: ByteRange | undefined): Effect.Effect<void, StorageError> =>
  range === undefined ||
    (Number.isSafeInteger(range.start) && Number.isSafeInteger(range.end) && range.start >= 0 && range.end >= range.start)
    ? Effect.void
    : Effect.fail(new StorageError({ message: `Invalid byte range ${range.start}-${range.end}` }))

/** The part of `range` inside an object of `size` bytes (its end clamped, as HTTP does); none when it starts past the end. */
export const clampRange = (range: ByteRange, size: number): Option.Option<ByteRange> =>
  range.start < size ? Option.some({ start: range.start, end: Math.min(range.end, size - 1) }) : Option.none()
