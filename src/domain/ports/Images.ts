import { Context, Data, type Effect } from "effect"

/** The bytes claimed to be an image could not be decoded as one. */
export class ImageUnreadable extends Data.TaggedError("ImageUnreadable")<{ readonly cause?: unknown }> {}

export interface Thumbnail {
  readonly bytes: Uint8Array
  readonly mimeType: string
}

/** Image work the domain needs but does not do itself (decoding pixels is a library's job). */
export class Images extends Context.Tag("Ports/Images")<Images, {
  /**
   * A small preview of a JPEG/PNG/WebP/GIF (longest side at most 320 px, first frame, EXIF
   * orientation applied), carrying no metadata.
   */
  readonly thumbnail: (image: Uint8Array) => Effect.Effect<Thumbnail, ImageUnreadable>
}>() {}
