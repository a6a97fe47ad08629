import { type Cause, Channel, Chunk, Data, Either, Stream } from "effect"

/** The bytes are not a JPEG whose segments can be walked. */
export class InvalidJpeg extends Data.TaggedError("InvalidJpeg")<{ readonly message: string }> {}

const SOI = 0xd8
const EOI = 0xd9
const SOS = 0xda
const APP0 = 0xe0
const APP1 = 0xe1
const APP2 = 0xe2
const APP14 = 0xee
const APP15 = 0xef
const COM = 0xfe

const isRst = (marker: number) => marker >= 0xd0 && marker <= 0xd7
const isStandalone = (marker: number) => marker === 0x01 || isRst(marker)

const hex = (byte: number) => `0x${byte.toString(16).padStart(2, "0").toUpperCase()}`

const hasPrefix = (bytes: Uint8Array, at: number, text: string): boolean =>
  bytes.length >= at + text.length && Array.from(text).every((c, i) => bytes[at + i] === c.charCodeAt(0))

/**
 * A header segment (marker, length and payload) as it should be written, or undefined to drop it.
 * Kept: every non-APP segment, APP0 JFIF (its thumbnail, which may show the uncropped original,
 * removed), APP2 ICC profile and APP14 Adobe (both change the colours). Dropped: every other APPn
 * (EXIF incl. GPS and XMP in APP1, MPF in APP2, IPTC in APP13, Ducky in APP12, C2PA in APP11, ...)
 * and COM. EXIF is not seen here: the `Stripper` replaces it with `orientationOnly`.
 */
const rewrite = (segment: Uint8Array): Uint8Array | undefined => {
  const marker = segment[1] ?? 0
  if (marker === COM) return undefined
  if (marker < APP0 || marker > APP15) return segment
  if (marker === APP2) return hasPrefix(segment, 4, "ICC_PROFILE\0") ? segment : undefined
  if (marker === APP14) return hasPrefix(segment, 4, "Adobe") ? segment : undefined
  if (marker !== APP0 || !hasPrefix(segment, 4, "JFIF\0") || segment.length < 18) return undefined
  if (segment.length === 18 && segment[16] === 0 && segment[17] === 0) return segment
  const jfif = segment.slice(0, 18)
  jfif.set([0x00, 0x10], 2)
  jfif.set([0, 0], 16)
  return jfif
}

const isExif = (segment: Uint8Array): boolean => segment[1] === APP1 && hasPrefix(segment, 4, "Exif\0\0")

const TIFF = 10 // after FF E1, the length and "Exif\0\0"
const ORIENTATION = 0x0112
const SHORT = 3

interface Orientation {
  readonly littleEndian: boolean
  readonly value: number
}

/**
 * The Orientation in IFD0 of an EXIF segment if it is 2..8, with the byte order of its TIFF data;
 * undefined if it is 1 or absent, or if the TIFF header or IFD0 are malformed (offsets are taken
 * from the upload, so every read is bounds-checked first).
 */
const readOrientation = (segment: Uint8Array): Orientation | undefined => {
  if (segment.length < TIFF + 8) return undefined
  const tiff = new DataView(segment.buffer, segment.byteOffset + TIFF, segment.length - TIFF)
  const order = tiff.getUint16(0)
  if (order !== 0x4949 && order !== 0x4d4d) return undefined
  const littleEndian = order === 0x4949
  if (tiff.getUint16(2, littleEndian) !== 42) return undefined
  const ifd = tiff.getUint32(4, littleEndian)
  if (ifd < 8 || ifd + 2 > tiff.byteLength) return undefined
  const entries = tiff.getUint16(ifd, littleEndian)
  const end = ifd + 2 + entries * 12
  if (end + 4 > tiff.byteLength) return undefined
  for (let entry = ifd + 2; entry < end; entry += 12) {
    if (tiff.getUint16(entry, littleEndian) !== ORIENTATION) continue
    const type = tiff.getUint16(entry + 2, littleEndian)
    const count = tiff.getUint32(entry + 4, littleEndian)
    const value = tiff.getUint16(entry + 8, littleEndian)
    return type === SHORT && count === 1 && value >= 2 && value <= 8 ? { littleEndian, value } : undefined
  }
  return undefined
}

/** A minimal EXIF APP1 segment: a TIFF header and an IFD0 holding only the Orientation. */
const orientationOnly = ({ littleEndian, value }: Orientation): Uint8Array => {
  const segment = new Uint8Array(TIFF + 26)
  const view = new DataView(segment.buffer)
  segment.set([0xff, APP1, 0, segment.length - 2, ...Array.from("Exif\0\0", (c) => c.charCodeAt(0))])
  view.setUint16(TIFF, littleEndian ? 0x4949 : 0x4d4d)
  view.setUint16(TIFF + 2, 42, littleEndian)
  view.setUint32(TIFF + 4, 8, littleEndian)
  view.setUint16(TIFF + 8, 1, littleEndian)
  view.setUint16(TIFF + 10, ORIENTATION, littleEndian)
  view.setUint16(TIFF + 12, SHORT, littleEndian)
  view.setUint32(TIFF + 14, 1, littleEndian)
  view.setUint16(TIFF + 18, value, littleEndian)
  return segment
}

type Phase =
  | "soi" // the two bytes FF D8
  | "marker" // the FF that starts the next marker
  | "code" // a marker code, or fill bytes FF
  | "length" // the two bytes of a segment's length
  | "segment" // a segment's payload, buffered (at most 64 KiB)
  | "entropy" // entropy-coded data after SOS, copied through
  | "entropyFF" // an FF in entropy-coded data: stuffing (FF 00), RSTn, or a marker
  | "trailer" // after EOI: dropped

/**
 * Walks a JPEG's header segments across arbitrary chunk boundaries and drops the metadata ones.
 * Entropy-coded data is copied without decoding, but its markers are followed: progressive files
 * have tables (and possibly metadata) between scans, and everything after EOI is dropped because
 * phones append data there (Motion Photo videos with their own GPS, MPF secondary images with EXIF).
 */
class Stripper {
  private phase: Phase = "soi"
  private soiBytes = 0
  private marker = 0
  private lengthHigh: number | undefined = undefined
  private segment = new Uint8Array(0)
  private filled = 0
  private scans = 0
  private exifSeen = false
  private out: Array<Uint8Array> = []

  push(chunks: Iterable<Uint8Array>): Either.Either<Array<Uint8Array>, InvalidJpeg> {
    for (const chunk of chunks) {
      let at = 0
      while (at < chunk.length) {
        if (this.phase === "entropy") at = this.copyEntropy(chunk, at)
        else if (this.phase === "segment") at = this.fillSegment(chunk, at)
        else if (this.phase === "trailer") at = chunk.length
        else {
          const byte = chunk[at++]
          const error = byte === undefined ? undefined : this.step(byte)
          if (error !== undefined) return Either.left(error)
        }
      }
    }
    const out = this.out
    this.out = []
    return Either.right(out)
  }

  /** Truncated scan data is the image's problem, not a leak: decoders show what is there. */
  end(): Either.Either<void, InvalidJpeg> {
    return this.scans > 0 ? Either.void : Either.left(new InvalidJpeg({ message: "The JPEG ends before its image data" }))
  }

  private step(byte: number): InvalidJpeg | undefined {
    switch (this.phase) {
      case "soi":
        if (byte !== (this.soiBytes === 0 ? 0xff : SOI)) return new InvalidJpeg({ message: "Not a JPEG (no SOI marker)" })
        if (++this.soiBytes === 2) {
          this.out.push(Uint8Array.of(0xff, SOI))
          this.phase = "marker"
        }
        return undefined
      case "marker":
        if (byte !== 0xff) return new InvalidJpeg({ message: `Expected a marker, found ${hex(byte)}` })
        this.phase = "code"
        return undefined
      case "code":
        return byte === 0xff ? undefined : this.onMarker(byte)
      case "entropyFF":
        if (byte === 0x00 || isRst(byte)) {
          this.out.push(Uint8Array.of(0xff, byte))
          this.phase = "entropy"
          return undefined
        }
        return byte === 0xff ? undefined : this.onMarker(byte)
      case "length":
        if (this.lengthHigh === undefined) {
          this.lengthHigh = byte
          return undefined
        }
        return this.onLength(this.lengthHigh * 256 + byte)
      default:
        return undefined
    }
  }

  private onMarker(marker: number): InvalidJpeg | undefined {
    if (marker === 0x00 || marker === SOI) return new InvalidJpeg({ message: `Unexpected marker FF ${hex(marker)}` })
    if (marker === EOI) {
      if (this.scans === 0) return new InvalidJpeg({ message: "The JPEG ends before its image data" })
      this.out.push(Uint8Array.of(0xff, EOI))
      this.phase = "trailer"
    } else if (isStandalone(marker)) {
      this.out.push(Uint8Array.of(0xff, marker))
      this.phase = "marker"
    } else {
      this.marker = marker
      this.lengthHigh = undefined
      this.phase = "length"
    }
    return undefined
  }

  private onLength(length: number): InvalidJpeg | undefined {
    if (length < 2) return new InvalidJpeg({ message: `Segment FF ${hex(this.marker)} has length ${length}` })
    this.segment = new Uint8Array(length + 2)
    this.segment.set([0xff, this.marker, length >> 8, length & 0xff])
    this.filled = 4
    this.phase = "segment"
    if (length === 2) this.endSegment()
    return undefined
  }

  private fillSegment(chunk: Uint8Array, from: number): number {
    const count = Math.min(this.segment.length - this.filled, chunk.length - from)
    this.segment.set(chunk.subarray(from, from + count), this.filled)
    this.filled += count
    if (this.filled === this.segment.length) this.endSegment()
    return from + count
  }

  private endSegment(): void {
    const kept = isExif(this.segment) ? this.replaceExif(this.segment) : rewrite(this.segment)
    if (kept !== undefined) this.out.push(kept)
    this.segment = new Uint8Array(0)
    if (this.marker === SOS) {
      this.scans++
      this.phase = "entropy"
    } else {
      this.phase = "marker"
    }
  }

  /**
   * Only the first EXIF segment, and only before the image data, is read; its Orientation (if it
   * rotates or mirrors) is kept in a new segment, and a malformed one is simply dropped.
   */
  private replaceExif(segment: Uint8Array): Uint8Array | undefined {
    if (this.exifSeen || this.scans > 0) return undefined
    this.exifSeen = true
    const orientation = readOrientation(segment)
    return orientation === undefined ? undefined : orientationOnly(orientation)
  }

  /** Copies up to the next FF that is neither stuffing nor RSTn (or to the chunk's end). */
  private copyEntropy(chunk: Uint8Array, from: number): number {
    let at = from
    for (;;) {
      const ff = chunk.indexOf(0xff, at)
      const next = ff === -1 ? undefined : chunk[ff + 1]
      if (next !== undefined && (next === 0x00 || isRst(next))) {
        at = ff + 2
        continue
      }
      const end = ff === -1 ? chunk.length : ff
      if (end > from) this.out.push(chunk.subarray(from, end))
      if (ff === -1) return end
      this.phase = "entropyFF"
      return ff + 1
    }
  }
}

const strip = <E>(
  stripper: Stripper
): Channel.Channel<Chunk.Chunk<Uint8Array>, Chunk.Chunk<Uint8Array>, E | InvalidJpeg, E, unknown, unknown> =>
  Channel.readWithCause({
    onInput: (input: Chunk.Chunk<Uint8Array>) => {
      const out = stripper.push(input)
      if (Either.isLeft(out)) return Channel.fail(out.left)
      return out.right.length === 0
        ? strip<E>(stripper)
        : Channel.zipRight(Channel.write(Chunk.unsafeFromArray(out.right)), strip<E>(stripper))
    },
    onFailure: (cause: Cause.Cause<E>) => Channel.failCause(cause),
    onDone: () => {
      const end = stripper.end()
      return Either.isLeft(end) ? Channel.fail(end.left) : Channel.void
    }
  })

/**
 * The JPEG in `body` without its metadata (see `rewrite` for what is kept), streamed: chunks may
 * split segments anywhere, and only one header segment is buffered at a time. The image data is
 * unchanged, so it decodes to the same pixels. The EXIF Orientation survives: if the first EXIF
 * segment rotates or mirrors the image (2..8), a minimal EXIF segment with only that tag takes its
 * place; a malformed EXIF segment is dropped without failing.
 * Fails with `InvalidJpeg` if the bytes are not a JPEG or its headers are cut or malformed.
 */
export const stripJpegMetadata = <E, R>(
  body: Stream.Stream<Uint8Array, E, R>
): Stream.Stream<Uint8Array, E | InvalidJpeg, R> =>
  Stream.pipeThroughChannelOrFail(body, Channel.suspend(() => strip<E>(new Stripper())))
