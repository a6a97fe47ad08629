import { Effect, Layer } from "effect"
import { Images, ImageUnreadable } from "../../domain/ports/Images.js"

const THUMBNAIL_SIZE = 320
// Phones' full-resolution modes reach 50-108 MP; beyond that a ≤10 MB upload is a decompression bomb.
const MAX_INPUT_PIXELS = 110_000_000
// Thumbnails share libuv's thread pool (4 threads) with argon2 and file I/O; two at a time leaves room.
const MAX_CONCURRENT = 2

/**
 * Thumbnails with sharp (libvips). Uploads are all different, so libvips' operation cache would
 * only hold memory; and one libvips thread per image lets parallel thumbnails share a small machine.
 * libvips is loaded with the first image (it holds about 20 MB): an instance that never sees one never
 * pays for it.
 */
export const layer = Layer.effect(
  Images,
  Effect.gen(function*() {
    const loaded = yield* Effect.cached(Effect.promise(async () => {
      const sharp = (await import("sharp")).default
      sharp.cache(false)
      sharp.concurrency(1)
      return sharp
    }))
    const permits = yield* Effect.makeSemaphore(MAX_CONCURRENT)
    return Images.of({
      thumbnail: (image) =>
        Effect.flatMap(loaded, (sharp) =>
          Effect.tryPromise({
            try: () =>
              sharp(image, { animated: false, failOn: "error", limitInputPixels: MAX_INPUT_PIXELS })
                .autoOrient()
                .resize(THUMBNAIL_SIZE, THUMBNAIL_SIZE, { fit: "inside", withoutEnlargement: true })
                .webp({ quality: 75 })
                .timeout({ seconds: 10 })
                .toBuffer(),
            catch: (cause) => new ImageUnreadable({ cause })
          })).pipe(
            Effect.map((bytes) => ({ bytes, mimeType: "image/webp" })),
            permits.withPermits(1),
            Effect.withSpan("Images.thumbnail")
          )
    })
  })
)
