import { describe, expect, it } from "@effect/vitest"
import { Data, Effect, Exit, Stream } from "effect"
import sharp from "sharp"
import { InvalidJpeg, stripJpegMetadata } from "../../../src/domain/attachments/JpegMetadata.js"
import { bytes, chunked, collect, concat, contains, headerMarkers, photo, segment, withSegments } from "./fixtures.js"

const APP0 = 0xe0
const APP1 = 0xe1
const APP2 = 0xe2
const APP12 = 0xec
const APP13 = 0xed
const APP14 = 0xee
const COM = 0xfe

const xmp =
  `<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">` +
  `<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:creator>Jane Secret</dc:creator>` +
  `</rdf:Description></rdf:RDF></x:xmpmeta>`

/** A camera-like JPEG: EXIF with GPS, XMP, an ICC profile, and IPTC, Ducky, comment and JFIF-with-thumbnail segments. */
const cameraJpeg = Effect.promise(async () => {
  const encoded = await photo(240, 160)
    .withExif({
      IFD0: { Make: "SecretPhone", Model: "X1", Copyright: "Jane Secret", Orientation: "6" },
      IFD3: { GPSLatitudeRef: "N", GPSLatitude: "48/1 51/1 2400/100", GPSLongitudeRef: "E", GPSLongitude: "2/1 21/1 300/100" }
    })
    .withXmp(xmp)
    .withIccProfile("p3")
    .jpeg({ quality: 90 })
    .toBuffer()
  const jfifWithThumbnail = segment(APP0, concat(bytes("JFIF\0"), Uint8Array.of(1, 2, 1, 0, 72, 0, 72, 2, 1), new Uint8Array(6).fill(0xaa)))
  const iptc = segment(APP13, concat(bytes("Photoshop 3.0\u00008BIM"), bytes("\x04\x04\0\0\0\0\0\x10\x1c\x02\x50\0\x0bJane Secret")))
  const ducky = segment(APP12, concat(bytes("Ducky\0\x01\0\x04\0\0\0\x3c")))
  const comment = segment(COM, bytes("Shot at 12 Secret Street"))
  const adobe = segment(APP14, concat(bytes("Adobe"), Uint8Array.of(0, 100, 0, 0, 0, 0, 1)))
  return withSegments(encoded, jfifWithThumbnail, iptc, ducky, comment, adobe)
})

const plainJpeg = Effect.promise(() => photo(240, 160).jpeg({ quality: 80 }).toBuffer())

const metadata = (jpeg: Uint8Array) => Effect.promise(() => sharp(jpeg).metadata())
const pixels = (jpeg: Uint8Array) => Effect.promise(() => sharp(jpeg).raw().toBuffer())

const strip = (file: Uint8Array, chunkSize: number) => collect(stripJpegMetadata(chunked(file, chunkSize)))

const failure = (file: Uint8Array, chunkSize = 3) =>
  Effect.flip(strip(file, chunkSize))

describe("stripJpegMetadata", () => {
  it.effect("removes EXIF (with GPS), XMP, IPTC, Ducky and comments whatever the chunk size", () =>
    Effect.gen(function*() {
      const original = yield* cameraJpeg
      const before = yield* metadata(original)
      expect(before.exif?.includes(Buffer.of(0x25, 0x88))).toBe(true) // the GPS IFD pointer tag
      expect(before.xmp).toBeDefined()
      expect(before.iptc).toBeDefined()
      expect(contains(original, "Exif\0\0")).toBe(true)
      expect(contains(original, "Jane Secret")).toBe(true)

      const expected = yield* strip(original, original.length)
      for (const size of [1, 2, 3, 7, 4096]) {
        const stripped = yield* strip(original, size)
        expect(stripped).toEqual(expected)
      }
      for (const secret of ["Exif\0\0", "Jane Secret", "SecretPhone", "Secret Street", "http://ns.adobe.com", "8BIM", "Ducky"]) {
        expect(contains(expected, secret), secret).toBe(false)
      }
      expect(headerMarkers(expected).filter((marker) => marker >= 0xe0 && marker <= 0xef)).toEqual([APP0, APP14, APP2])
      const after = yield* metadata(expected)
      expect(after.exif).toBeUndefined()
      expect(after.xmp).toBeUndefined()
      expect(after.iptc).toBeUndefined()
      expect(after.orientation).toBeUndefined()
      expect(after.icc).toEqual(before.icc)
      expect([after.width, after.height]).toEqual([before.width, before.height])
      expect(yield* pixels(expected)).toEqual(yield* pixels(original))
    }))

  it.effect("keeps JFIF but without its thumbnail, the ICC profile and the Adobe segment byte for byte", () =>
    Effect.gen(function*() {
      const stripped = yield* strip(yield* cameraJpeg, 5)
      const jfif = stripped.subarray(2, 20)
      expect(Array.from(jfif)).toEqual([0xff, APP0, 0, 16, ...bytes("JFIF\0"), 1, 2, 1, 0, 72, 0, 72, 0, 0])
      expect(contains(stripped, "ICC_PROFILE\0")).toBe(true)
      expect(contains(stripped, "Adobe\0d")).toBe(true)
    }))

  it.effect("passes a JPEG without metadata through byte for byte, baseline and progressive", () =>
    Effect.gen(function*() {
      const progressive = yield* Effect.promise(() => photo(300, 200).jpeg({ progressive: true }).toBuffer())
      for (const original of [yield* plainJpeg, progressive]) {
        expect((yield* metadata(original)).exif).toBeUndefined()
        for (const size of [1, 7, 4096]) expect(yield* strip(original, size)).toEqual(new Uint8Array(original))
      }
    }))

  it.effect("removes metadata segments between the scans of a progressive JPEG", () =>
    Effect.gen(function*() {
      const progressive = yield* Effect.promise(() => photo(300, 200).jpeg({ progressive: true }).toBuffer())
      const secondScan = Buffer.from(progressive).indexOf(Uint8Array.of(0xff, 0xda), headerMarkersEnd(progressive))
      expect(secondScan).toBeGreaterThan(0)
      const hidden = concat(
        progressive.subarray(0, secondScan),
        segment(APP1, bytes("Exif\0\0hidden GPS")),
        segment(COM, bytes("hidden comment")),
        progressive.subarray(secondScan)
      )
      for (const size of [1, 7, 4096]) expect(yield* strip(hidden, size)).toEqual(new Uint8Array(progressive))
    }))

  it.effect("drops everything after EOI (Motion Photo videos, MPF secondary images)", () =>
    Effect.gen(function*() {
      const original = yield* plainJpeg
      const secondary = yield* cameraJpeg
      const motionPhoto = concat(original, bytes("\0\0\0\x18ftypmp42 ©xyz+48.8577+002.2950/"), secondary)
      for (const size of [1, 7, 4096]) expect(yield* strip(motionPhoto, size)).toEqual(new Uint8Array(original))
    }))

  it.effect("drops fill bytes before markers, and keeps stuffed bytes and restart markers in scan data", () =>
    Effect.gen(function*() {
      const tables = segment(0xdb, new Uint8Array(65))
      const scanHeader = segment(0xda, Uint8Array.of(1, 1, 0, 0, 63, 0))
      const scan = Uint8Array.of(0x12, 0xff, 0x00, 0x34, 0xff, 0xd0, 0x56, 0xff, 0xd1, 0xff, 0x00)
      const file = concat(
        Uint8Array.of(0xff, 0xd8, 0xff, 0xff),
        tables,
        Uint8Array.of(0xff, 0xff, 0xff),
        segment(COM, bytes("x")),
        scanHeader,
        scan,
        Uint8Array.of(0xff, 0xff, 0xd9),
        bytes("trailer")
      )
      const expected = concat(Uint8Array.of(0xff, 0xd8), tables, scanHeader, scan, Uint8Array.of(0xff, 0xd9))
      for (const size of [1, 2, 3, 5, file.length]) expect(yield* strip(file, size)).toEqual(expected)
    }))

  it.effect("passes standalone markers (TEM, RSTn) between segments through", () =>
    Effect.gen(function*() {
      const scanHeader = segment(0xda, Uint8Array.of(1, 1, 0, 0, 63, 0))
      const file = concat(Uint8Array.of(0xff, 0xd8, 0xff, 0x01), segment(APP1, bytes("Exif\0\0")), scanHeader, Uint8Array.of(1, 2, 0xff, 0xd9))
      expect(yield* strip(file, 1)).toEqual(concat(Uint8Array.of(0xff, 0xd8, 0xff, 0x01), scanHeader, Uint8Array.of(1, 2, 0xff, 0xd9)))
    }))

  it.effect("accepts image data cut short, since the headers were complete", () =>
    Effect.gen(function*() {
      const original = yield* plainJpeg
      const cut = original.subarray(0, original.length - 100)
      expect(yield* strip(cut, 7)).toEqual(new Uint8Array(cut))
    }))

  it.effect("fails with InvalidJpeg on input that is not a well-formed JPEG", () =>
    Effect.gen(function*() {
      const original = yield* cameraJpeg
      const cases: ReadonlyArray<[string, Uint8Array]> = [
        ["empty", new Uint8Array(0)],
        ["a PNG", Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)],
        ["only FF", Uint8Array.of(0xff)],
        ["length below 2", concat(Uint8Array.of(0xff, 0xd8), Uint8Array.of(0xff, APP1, 0x00, 0x01), original.subarray(2))],
        ["cut inside a header segment", original.subarray(0, 300)],
        ["cut inside a length", concat(Uint8Array.of(0xff, 0xd8, 0xff, APP1, 0x00))],
        ["garbage between segments", concat(Uint8Array.of(0xff, 0xd8, 0x00), original.subarray(2))],
        ["a stray FF 00", concat(Uint8Array.of(0xff, 0xd8, 0xff, 0x00), original.subarray(2))],
        ["a second SOI", concat(Uint8Array.of(0xff, 0xd8), original)],
        ["EOI before any scan", Uint8Array.of(0xff, 0xd8, 0xff, 0xd9)]
      ]
      for (const [name, file] of cases) {
        for (const size of [1, 4096]) {
          const error = yield* failure(file, size)
          expect(error, name).toBeInstanceOf(InvalidJpeg)
          expect(error._tag).toBe("InvalidJpeg")
        }
      }
    }))

  it.effect("passes the body's own failure through, and restarts cleanly when run twice", () =>
    Effect.gen(function*() {
      class Disconnected extends Data.TaggedError("Disconnected") {}
      const original = yield* plainJpeg
      const broken = Stream.concat(chunked(original.subarray(0, 1000), 100), Stream.fail(new Disconnected()))
      expect(yield* Effect.flip(collect(stripJpegMetadata(broken)))).toEqual(new Disconnected())

      const once = stripJpegMetadata(chunked(original, 512))
      const [first, second] = yield* Effect.all([collect(once), collect(once)])
      expect(first).toEqual(second)
      expect(Exit.isSuccess(yield* Effect.exit(collect(once)))).toBe(true)
    }))
})

/** The offset just past the first SOS segment's header. */
const headerMarkersEnd = (jpeg: Uint8Array): number => {
  const sos = Buffer.from(jpeg).indexOf(Uint8Array.of(0xff, 0xda))
  return sos + 2 + ((jpeg[sos + 2] ?? 0) << 8 | (jpeg[sos + 3] ?? 0))
}
