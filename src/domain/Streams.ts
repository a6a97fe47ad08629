import { type Chunk, Effect, Option } from "effect"

/** The next chunk of a `Stream.toPull` pull, or None once the stream has ended; its failures pass through. */
export const nextChunk = <A, E, R>(pull: Effect.Effect<Chunk.Chunk<A>, Option.Option<E>, R>) =>
  pull.pipe(
    Effect.map(Option.some),
    Effect.catchAll(Option.match({ onNone: () => Effect.succeed(Option.none()), onSome: Effect.fail }))
  )
