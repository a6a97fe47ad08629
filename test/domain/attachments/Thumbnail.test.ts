import { describe, expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import sharp from "sharp"
import { Images, ImageUnreadable } from "../../../src/domain/ports/Images.js"
import * as Sharp from "../../../src/infra/media/Sharp.js"
import { bytes, concat, photo, solid } from "./fixtures.js"

const metadata = (image: Uint8Array) => Effect.promise(() => sharp(image).metadata())

/** A PNG header claiming 30000 x 30000 pixels, with no pixel data. */
const pixelBomb = (): Uint8Array => {
  const ihdr = Buffer.alloc(17)
  ihdr.write("IHDR", 0, "latin1")
  ihdr.writeUInt32BE(30_000, 4)
  ihdr.writeUInt32BE(30_000, 8)
  ihdr.set([8, 2, 0, 0, 0], 12)
  const chunk = Buffer.alloc(25)
  chunk.writeUInt32BE(13, 0)
  ihdr.copy(chunk, 4)
  chunk.writeUInt32BE(crc32(ihdr), 21)
  return concat(Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a), chunk)
}

const crc32 = (data: Uint8Array): number => {
  let crc = 0xffffffff
  for (const byte of data) {
    crc ^= byte
    for (let bit = 0; bit < 8; bit++) crc = (crc >>> 1) ^ (0xedb88320 & -(crc & 1))
  }
  return (crc ^ 0xffffffff) >>> 0
}

describe("Sharp thumbnails", () => {
  layer(Sharp.layer)((it) => {
    it.effect("makes a WebP at most 320 px on its longest side, without metadata", () =>
      Effect.gen(function*() {
        const images = yield* Images
        const original = yield* Effect.promise(() =>
          photo(2000, 1000).withExif({ IFD0: { Copyright: "Jane Secret" } }).jpeg().toBuffer()
        )
        const thumbnail = yield* images.thumbnail(original)
        expect(thumbnail.mimeType).toBe("image/webp")
        const info = yield* metadata(thumbnail.bytes)
        expect([info.format, info.width, info.height]).toEqual(["webp", 320, 160])
        expect(info.exif).toBeUndefined()
        expect(info.xmp).toBeUndefined()
      }))

    it.effect("applies the EXIF orientation and does not enlarge small images", () =>
      Effect.gen(function*() {
        const images = yield* Images
        const rotated = yield* Effect.promise(() => solid(200, 100).withMetadata({ orientation: 6 }).jpeg().toBuffer())
        expect((yield* metadata(rotated)).orientation).toBe(6)
        const info = yield* metadata((yield* images.thumbnail(rotated)).bytes)
        expect([info.width, info.height, info.orientation]).toEqual([100, 200, undefined])
      }))

    it.effect("takes each supported format, and the first frame of an animation", () =>
      Effect.gen(function*() {
        const images = yield* Images
        const frames = yield* Effect.promise(() =>
          Promise.all(["#cc3333", "#33cc33", "#3333cc"].map((background) =>
            sharp({ create: { width: 400, height: 300, channels: 3, background } }).png().toBuffer()
          ))
        )
        const animated = yield* Effect.promise(() => sharp(frames, { join: { animated: true } }).gif().toBuffer())
        expect((yield* metadata(animated)).pages).toBe(3)
        const inputs = [
          yield* Effect.promise(() => solid(640, 480).png().toBuffer()),
          yield* Effect.promise(() => solid(640, 480).webp().toBuffer()),
          yield* Effect.promise(() => solid(640, 480).gif().toBuffer()),
          animated
        ]
        for (const input of inputs) {
          const info = yield* metadata((yield* images.thumbnail(input)).bytes)
          expect(info.format).toBe("webp")
          expect(Math.max(info.width, info.height)).toBeLessThanOrEqual(320)
          expect(info.pages ?? 1).toBe(1)
        }
        const thumbnail = yield* images.thumbnail(animated)
        const first = yield* Effect.promise(() => sharp(thumbnail.bytes).raw().toBuffer())
        expect(first[0]).toBeGreaterThan(150)
        expect(first[2]).toBeLessThan(100)
      }))

    it.effect("fails with ImageUnreadable on garbage, a truncated file and a pixel bomb", () =>
      Effect.gen(function*() {
        const images = yield* Images
        const jpeg = yield* Effect.promise(() => photo(400, 300).jpeg().toBuffer())
        for (const input of [bytes("not an image at all"), new Uint8Array(0), jpeg.subarray(0, 600), pixelBomb()]) {
          expect(yield* Effect.flip(images.thumbnail(input))).toBeInstanceOf(ImageUnreadable)
        }
      }))
  })
})
