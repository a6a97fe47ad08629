import { crc32 } from "node:zlib"
import { Chunk, Effect, Stream } from "effect"
import sharp from "sharp"

export const bytes = (text: string): Uint8Array => new TextEncoder().encode(text)

export const concat = (...parts: ReadonlyArray<Uint8Array>): Uint8Array => Uint8Array.from(Buffer.concat(parts))

export const solid = (width: number, height: number) =>
  sharp({ create: { width, height, channels: 3, background: { r: 40, g: 120, b: 200 } } })

/** A gradient, so that the entropy-coded data is not trivial (stuffed FF 00 bytes and all). */
export const photo = (width: number, height: number) => {
  const pixels = Buffer.alloc(width * height * 3)
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const at = (y * width + x) * 3
      pixels[at] = (x * 7 + y * 3) & 0xff
      pixels[at + 1] = (x * y) & 0xff
      pixels[at + 2] = (x ^ y) & 0xff
    }
  }
  return sharp(pixels, { raw: { width, height, channels: 3 } })
}

export const pdf = bytes(
  "%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n" +
    "2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n" +
    "3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >> endobj\n" +
    "trailer << /Root 1 0 R >>\n%%EOF\n"
)

export interface ZipEntry {
  readonly name: string
  readonly data: Uint8Array
}

/**
 * A stored (uncompressed) ZIP. `streamed` writes sizes as zero in the local headers and puts them
 * in data descriptors after the data, as streaming writers (Java's ZipOutputStream, POI) do.
 */
export const zip = (entries: ReadonlyArray<ZipEntry>, options: { readonly streamed?: boolean } = {}): Uint8Array => {
  const locals: Array<Uint8Array> = []
  const centrals: Array<Uint8Array> = []
  let offset = 0
  for (const entry of entries) {
    const name = Buffer.from(entry.name, "utf8")
    const crc = crc32(entry.data)
    const size = entry.data.length
    const streamed = options.streamed === true
    const local = Buffer.alloc(30)
    local.writeUInt32LE(0x04034b50, 0)
    local.writeUInt16LE(20, 4)
    local.writeUInt16LE(streamed ? 0x08 : 0, 6)
    local.writeUInt32LE(streamed ? 0 : crc, 14)
    local.writeUInt32LE(streamed ? 0 : size, 18)
    local.writeUInt32LE(streamed ? 0 : size, 22)
    local.writeUInt16LE(name.length, 26)
    const descriptor = Buffer.alloc(streamed ? 16 : 0)
    if (streamed) {
      descriptor.writeUInt32LE(0x08074b50, 0)
      descriptor.writeUInt32LE(crc, 4)
      descriptor.writeUInt32LE(size, 8)
      descriptor.writeUInt32LE(size, 12)
    }
    const central = Buffer.alloc(46)
    central.writeUInt32LE(0x02014b50, 0)
    central.writeUInt16LE(20, 4)
    central.writeUInt16LE(20, 6)
    central.writeUInt16LE(streamed ? 0x08 : 0, 8)
    central.writeUInt32LE(crc, 16)
    central.writeUInt32LE(size, 20)
    central.writeUInt32LE(size, 24)
    central.writeUInt16LE(name.length, 28)
    central.writeUInt32LE(offset, 42)
    locals.push(local, name, entry.data, descriptor)
    centrals.push(central, name)
    offset += local.length + name.length + size + descriptor.length
  }
  const directory = Buffer.concat(centrals)
  const end = Buffer.alloc(22)
  end.writeUInt32LE(0x06054b50, 0)
  end.writeUInt16LE(entries.length, 8)
  end.writeUInt16LE(entries.length, 10)
  end.writeUInt32LE(directory.length, 12)
  end.writeUInt32LE(offset, 16)
  return Buffer.concat([...locals, directory, end])
}

const xml = (text: string): Uint8Array => bytes(`<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n${text}`)

const contentTypes = (part: string, type: string) =>
  xml(
    `<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">` +
      `<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>` +
      `<Default Extension="xml" ContentType="application/xml"/>` +
      `<Override PartName="${part}" ContentType="${type}"/></Types>`
  )

const rels = (target: string) =>
  xml(
    `<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">` +
      `<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="${target}"/></Relationships>`
  )

export const docxEntries: ReadonlyArray<ZipEntry> = [
  { name: "[Content_Types].xml", data: contentTypes(
      "/word/document.xml",
      "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
    ) },
  { name: "_rels/.rels", data: rels("word/document.xml") },
  {
    name: "word/document.xml",
    data: xml(
      `<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">` +
        `<w:body><w:p><w:r><w:t>Week 3 plan</w:t></w:r></w:p></w:body></w:document>`
    )
  }
]

export const xlsxEntries: ReadonlyArray<ZipEntry> = [
  { name: "[Content_Types].xml", data: contentTypes(
      "/xl/workbook.xml",
      "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
    ) },
  { name: "_rels/.rels", data: rels("xl/workbook.xml") },
  {
    name: "xl/workbook.xml",
    data: xml(
      `<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">` +
        `<sheets><sheet name="Sheet1" sheetId="1"/></sheets></workbook>`
    )
  },
  { name: "xl/worksheets/sheet1.xml", data: xml(`<worksheet><sheetData/></worksheet>`) }
]

/** The first `SNIFF_BYTES` of an upload, as the caller passes them. */
export const head = (file: Uint8Array, size: number): Uint8Array => file.subarray(0, size)

/** `file` as a stream of `size`-byte chunks (one Stream chunk per piece, as a socket would deliver). */
export const chunked = (file: Uint8Array, size: number): Stream.Stream<Uint8Array> => {
  const pieces: Array<Uint8Array> = []
  for (let at = 0; at < file.length; at += size) pieces.push(file.subarray(at, at + size))
  return Stream.fromIterable(pieces).pipe(Stream.rechunk(1))
}

export const collect = <E>(stream: Stream.Stream<Uint8Array, E>): Effect.Effect<Uint8Array, E> =>
  Stream.runCollect(stream).pipe(Effect.map((chunks) => concat(...Chunk.toReadonlyArray(chunks))))

export const segment = (marker: number, payload: Uint8Array): Uint8Array => {
  const header = Buffer.alloc(4)
  header.writeUInt16BE(0xff00 | marker, 0)
  header.writeUInt16BE(payload.length + 2, 2)
  return concat(header, payload)
}

/** The markers of a JPEG's header segments, up to and including the first SOS. */
export const headerMarkers = (jpeg: Uint8Array): Array<number> => {
  const markers: Array<number> = []
  const view = Buffer.from(jpeg.buffer, jpeg.byteOffset, jpeg.length)
  let at = 2
  while (at + 4 <= view.length) {
    const marker = view.readUInt8(at + 1)
    markers.push(marker)
    if (marker === 0xda) break
    at += 2 + view.readUInt16BE(at + 2)
  }
  return markers
}

/** Inserts `segments` right after the SOI of `jpeg`. */
export const withSegments = (jpeg: Uint8Array, ...segments: ReadonlyArray<Uint8Array>): Uint8Array =>
  concat(jpeg.subarray(0, 2), ...segments, jpeg.subarray(2))

export const contains = (haystack: Uint8Array, needle: string): boolean =>
  Buffer.from(haystack.buffer, haystack.byteOffset, haystack.length).includes(needle, 0, "latin1")

export type ExifValue =
  | { readonly short: number }
  | { readonly ascii: string }
  | { readonly ifd: ReadonlyArray<ExifEntry> }

export interface ExifEntry {
  readonly tag: number
  readonly value: ExifValue
}

/** An APP1 EXIF segment built by hand: a TIFF header, then IFD0 and the IFDs it points to. */
export const exifSegment = (byteOrder: "II" | "MM", ifd0: ReadonlyArray<ExifEntry>): Uint8Array => {
  const littleEndian = byteOrder === "II"
  const u16 = (value: number) => {
    const out = Buffer.alloc(2)
    if (littleEndian) out.writeUInt16LE(value)
    else out.writeUInt16BE(value)
    return out
  }
  const u32 = (value: number) => {
    const out = Buffer.alloc(4)
    if (littleEndian) out.writeUInt32LE(value)
    else out.writeUInt32BE(value)
    return out
  }
  const layout = (entries: ReadonlyArray<ExifEntry>, at: number): Uint8Array => {
    const fields: Array<Uint8Array> = [u16(entries.length)]
    const data: Array<Uint8Array> = []
    let end = at + 2 + entries.length * 12 + 4
    const append = (block: Uint8Array) => {
      const offset = end
      const padded = block.length % 2 === 0 ? block : concat(block, new Uint8Array(1))
      data.push(padded)
      end += padded.length
      return offset
    }
    for (const { tag, value } of entries) {
      if ("short" in value) {
        fields.push(u16(tag), u16(3), u32(1), u16(value.short), u16(0))
      } else if ("ascii" in value) {
        const text = bytes(`${value.ascii}\0`)
        const inline = text.length <= 4
        fields.push(u16(tag), u16(2), u32(text.length), inline ? concat(text, new Uint8Array(4 - text.length)) : u32(append(text)))
      } else {
        fields.push(u16(tag), u16(4), u32(1), u32(append(layout(value.ifd, end))))
      }
    }
    return concat(...fields, u32(0), ...data)
  }
  return segment(0xe1, concat(bytes("Exif\0\0"), bytes(byteOrder), u16(42), u32(8), layout(ifd0, 8)))
}

/** A JPEG's header segments (marker, length and payload), up to and including the first SOS. */
export const headerSegments = (jpeg: Uint8Array): Array<Uint8Array> => {
  const segments: Array<Uint8Array> = []
  const view = Buffer.from(jpeg.buffer, jpeg.byteOffset, jpeg.length)
  let at = 2
  while (at + 4 <= view.length) {
    const end = at + 2 + view.readUInt16BE(at + 2)
    segments.push(jpeg.subarray(at, end))
    if (view.readUInt8(at + 1) === 0xda) break
    at = end
  }
  return segments
}
