import { describe, expect, it } from "@effect/vitest"
import { Data, Effect, Exit, Stream } from "effect"
import sharp from "sharp"
import { InvalidJpeg, stripJpegMetadata } from "../../../src/domain/attachments/JpegMetadata.js"
import {
  bytes,
  chunked,
  collect,
  concat,
  contains,
  type ExifEntry,
  exifSegment,
  headerMarkers,
  headerSegments,
  photo,
  segment,
  withSegments
} from "./fixtures.js"

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
      IFD0: { Make: "SecretPhone", Model: "X1", Copyright: "Jane Secret" },
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

const ORIENTATION = 0x0112
const jfif = segment(APP0, concat(bytes("JFIF\0"), Uint8Array.of(1, 1, 0, 0, 1, 0, 1, 0, 0)))
const secrets = ["SecretPhone", "Jane Secret", "SecretDatum", "2024:05:06", "GPS"]

/** A phone-like EXIF: orientation, make, owner, an Exif IFD with the date and a GPS IFD. */
const phoneExif = (orientation: number | undefined): ReadonlyArray<ExifEntry> => [
  { tag: 0x010f, value: { ascii: "SecretPhone" } },
  ...(orientation === undefined ? [] : [{ tag: ORIENTATION, value: { short: orientation } }]),
  { tag: 0x8298, value: { ascii: "Jane Secret" } },
  { tag: 0x8769, value: { ifd: [{ tag: 0x9003, value: { ascii: "2024:05:06 07:08:09" } }] } },
  {
    tag: 0x8825,
    value: { ifd: [{ tag: 0x0001, value: { ascii: "N" } }, { tag: 0x0012, value: { ascii: "SecretDatum" } }] }
  }
]

/** What the stripper writes in place of an EXIF segment that rotates or mirrors the image. */
const orientationOnly = (byteOrder: "II" | "MM", orientation: number) =>
  exifSegment(byteOrder, [{ tag: ORIENTATION, value: { short: orientation } }])

/** A JPEG as sharp writes it for a phone photo: little-endian EXIF with GPS, and an sRGB profile. */
const sharpPhoneJpeg = (orientation: number) =>
  Effect.promise(() =>
    photo(240, 160)
      .withExif({
        IFD0: { Make: "SecretPhone", Model: "X1", Copyright: "Jane Secret" },
        IFD2: { DateTimeOriginal: "2024:05:06 07:08:09" },
        IFD3: { GPSLatitudeRef: "N", GPSLatitude: "48/1 51/1 2400/100", GPSMapDatum: "SecretDatum" }
      })
      .withMetadata({ orientation })
      .jpeg({ quality: 90 })
      .toBuffer()
  )

const smallJpeg = Effect.promise(() => photo(64, 48).jpeg({ quality: 80 }).toBuffer())

const handMadeJpeg = (exif: Uint8Array) => Effect.map(smallJpeg, (jpeg) => withSegments(jpeg, jfif, exif))

/** Strips `file` in chunks of 1, 7 and 4096 bytes, checks that the outputs agree, and returns one. */
const stripAnyhow = (file: Uint8Array) =>
  Effect.gen(function*() {
    const outputs = yield* Effect.forEach([1, 7, 4096], (size) => strip(file, size))
    for (const output of outputs) expect(output).toEqual(outputs[0])
    return outputs[0] ?? new Uint8Array(0)
  })

const app1Segments = (jpeg: Uint8Array) => headerSegments(jpeg).filter((header) => header[1] === APP1)

const expectNoSecrets = (jpeg: Uint8Array) => {
  for (const secret of secrets) expect(contains(jpeg, secret), secret).toBe(false)
}

describe("stripJpegMetadata and the EXIF orientation", () => {
  it.effect("keeps only the orientation of a rotated photo, in a minimal EXIF segment in place of the EXIF", () =>
    Effect.gen(function*() {
      const original = yield* sharpPhoneJpeg(6)
      const before = yield* metadata(original)
      expect(before.orientation).toBe(6)
      expect(before.exif?.includes(Buffer.of(0x25, 0x88))).toBe(true)
      for (const secret of ["SecretPhone", "Jane Secret", "SecretDatum", "2024:05:06"]) {
        expect(contains(original, secret), secret).toBe(true)
      }

      const stripped = yield* stripAnyhow(original)
      expectNoSecrets(stripped)
      expect(headerMarkers(stripped).slice(0, 2)).toEqual([APP1, APP2])
      expect(Array.from(stripped.subarray(0, 40))).toEqual([
        0xff, 0xd8, 0xff, APP1, 0, 34, ...bytes("Exif\0\0II"), 42, 0, 8, 0, 0, 0,
        1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0,
        0xff, APP2
      ])
      const after = yield* metadata(stripped)
      expect(after.orientation).toBe(6)
      expect(after.exif?.includes(Buffer.of(0x25, 0x88))).toBe(false)
      expect(after.exif?.length).toBe(32)
      expect(yield* pixels(stripped)).toEqual(yield* pixels(original))

      const { info } = yield* Effect.promise(() => sharp(stripped).autoOrient().toBuffer({ resolveWithObject: true }))
      expect([info.width, info.height]).toEqual([before.height, before.width])
    }))

  it.effect("reads big-endian and little-endian EXIF, and keeps its byte order", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<["II" | "MM", number]> = [["MM", 8], ["MM", 2], ["II", 3], ["II", 5]]
      for (const [byteOrder, orientation] of cases) {
        const original = yield* handMadeJpeg(exifSegment(byteOrder, phoneExif(orientation)))
        expect((yield* metadata(original)).orientation).toBe(orientation)

        const stripped = yield* stripAnyhow(original)
        expectNoSecrets(stripped)
        expect(headerSegments(stripped).slice(0, 2)).toEqual([jfif, orientationOnly(byteOrder, orientation)])
        expect(app1Segments(stripped)).toHaveLength(1)
        expect((yield* metadata(stripped)).orientation).toBe(orientation)
      }
    }))

  it.effect("writes no EXIF at all when the orientation is 1 or absent", () =>
    Effect.gen(function*() {
      const originals = [
        yield* sharpPhoneJpeg(1),
        yield* handMadeJpeg(exifSegment("MM", phoneExif(1))),
        yield* handMadeJpeg(exifSegment("II", phoneExif(undefined))),
        yield* handMadeJpeg(exifSegment("II", []))
      ]
      for (const original of originals) {
        const stripped = yield* stripAnyhow(original)
        expect(app1Segments(stripped)).toEqual([])
        expect(contains(stripped, "Exif")).toBe(false)
        expectNoSecrets(stripped)
        expect((yield* metadata(stripped)).orientation).toBeUndefined()
      }
    }))

  it.effect("drops a malformed EXIF segment without failing", () =>
    Effect.gen(function*() {
      const valid = exifSegment("II", phoneExif(6))
      const orientationEntry = 32
      const patched = (write: (segment: Buffer) => void) => {
        const copy = Buffer.from(valid)
        write(copy)
        return copy
      }
      const cut = (length: number) => patched((copy) => copy.writeUInt16BE(length - 2, 2)).subarray(0, length)
      const cases: ReadonlyArray<[string, Uint8Array]> = [
        ["only the Exif header", segment(APP1, bytes("Exif\0\0"))],
        ["a cut TIFF header", segment(APP1, bytes("Exif\0\0II*\0\x08\0"))],
        ["an unknown byte order", patched((copy) => copy.write("IM", 10, "latin1"))],
        ["the wrong byte order", patched((copy) => copy.write("MM", 10, "latin1"))],
        ["a wrong TIFF magic number", patched((copy) => copy.writeUInt16LE(43, 12))],
        ["IFD0 past the end", patched((copy) => copy.writeUInt32LE(valid.length, 14))],
        ["IFD0 far past the end", patched((copy) => copy.writeUInt32LE(0xffffffff, 14))],
        ["IFD0 inside the TIFF header", patched((copy) => copy.writeUInt32LE(2, 14))],
        ["more IFD0 entries than bytes", patched((copy) => copy.writeUInt16LE(0x1000, 18))],
        ["an IFD0 cut after the orientation", cut(orientationEntry + 12)],
        ["an IFD0 cut before its next-IFD offset", cut(20 + 12 * 5 + 2)],
        ["an orientation with count 2", patched((copy) => copy.writeUInt32LE(2, orientationEntry + 4))],
        ["an orientation with count 0", patched((copy) => copy.writeUInt32LE(0, orientationEntry + 4))],
        ["an orientation of type LONG", patched((copy) => copy.writeUInt16LE(4, orientationEntry + 2))],
        ["orientation 0", patched((copy) => copy.writeUInt16LE(0, orientationEntry + 8))],
        ["orientation 9", patched((copy) => copy.writeUInt16LE(9, orientationEntry + 8))]
      ]
      expect(headerSegments(yield* strip(yield* handMadeJpeg(valid), 4096))[1]).toEqual(orientationOnly("II", 6))
      const expected = yield* strip(yield* handMadeJpeg(new Uint8Array(0)), 4096)
      for (const [name, exif] of cases) {
        const original = yield* handMadeJpeg(exif)
        for (const size of [1, 7, 4096]) {
          const exit = yield* Effect.exit(strip(original, size))
          expect(exit, name).toEqual(Exit.succeed(expected))
        }
      }
    }))

  it.effect("reads only the first EXIF segment, and none after the image data has begun", () =>
    Effect.gen(function*() {
      const twice = yield* handMadeJpeg(concat(exifSegment("MM", phoneExif(6)), exifSegment("II", phoneExif(3))))
      expect(app1Segments(yield* stripAnyhow(twice))).toEqual([orientationOnly("MM", 6)])

      const malformedFirst = yield* handMadeJpeg(concat(segment(APP1, bytes("Exif\0\0")), exifSegment("II", phoneExif(3))))
      expect(app1Segments(yield* stripAnyhow(malformedFirst))).toEqual([])

      const xmpFirst = yield* handMadeJpeg(concat(segment(APP1, bytes(`http://ns.adobe.com/xap/1.0/\0${xmp}`)), exifSegment("II", phoneExif(3))))
      expect(app1Segments(yield* stripAnyhow(xmpFirst))).toEqual([orientationOnly("II", 3)])

      const progressive = yield* Effect.promise(() => photo(300, 200).jpeg({ progressive: true }).toBuffer())
      const secondScan = Buffer.from(progressive).indexOf(Uint8Array.of(0xff, 0xda), headerMarkersEnd(progressive))
      const late = concat(progressive.subarray(0, secondScan), exifSegment("II", phoneExif(6)), progressive.subarray(secondScan))
      expect(yield* stripAnyhow(late)).toEqual(new Uint8Array(progressive))
    }))
})
