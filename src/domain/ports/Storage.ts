import { Context, Data, type Effect, type Option, type Stream } from "effect"

/** The storage backend failed (disk, network, credentials): infrastructure, never the client's fault. */
export class StorageError extends Data.TaggedError("StorageError")<{
  readonly message: string
  readonly cause?: unknown
}> {}

/** An inclusive byte range, as in HTTP `Range: bytes=start-end`. */
export interface ByteRange {
  readonly start: number
  readonly end: number
}

export interface StoredFile {
  /** The whole object's size in bytes (not the range's). */
  readonly size: number
  /** The object's bytes, or the requested range of them. */
  readonly body: Stream.Stream<Uint8Array, StorageError>
}

/**
 * Where attachment bytes live: local disk for one instance, S3-compatible for a cluster. Keys are
 * opaque paths made by the server (e.g. `<uuid>/original`), never from client input.
 */
export class Storage extends Context.Tag("Ports/Storage")<Storage, {
  /**
   * Streams `body` into `key` and returns the byte count. The object appears only once it is
   * complete: a failed or interrupted put leaves nothing behind under `key`.
   */
  readonly put: <E>(
    key: string,
    body: Stream.Stream<Uint8Array, E>,
    options: { readonly contentType: string }
  ) => Effect.Effect<{ readonly size: number }, StorageError | E>
  /** None when there is no such object. */
  readonly get: (key: string, range?: ByteRange) => Effect.Effect<Option.Option<StoredFile>, StorageError>
  /** Idempotent: removing a missing object succeeds. */
  readonly remove: (key: string) => Effect.Effect<void, StorageError>
}>() {}
