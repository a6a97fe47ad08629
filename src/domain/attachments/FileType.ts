/** How many leading bytes of an upload `sniff` needs (the whole file when it is smaller). */
export const SNIFF_BYTES = 65_536

export type MimeType =
  | "image/jpeg"
  | "image/png"
  | "image/webp"
  | "image/gif"
  | "application/pdf"
  | "text/plain"
  | "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
  | "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

export interface FileKind {
  readonly mimeType: MimeType
  readonly kind: "image" | "document"
  /** The canonical extension, without the dot. */
  readonly extension: string
}

const kind = (mimeType: MimeType, type: FileKind["kind"], extension: string): FileKind => ({
  mimeType,
  kind: type,
  extension
})

export const Jpeg = kind("image/jpeg", "image", "jpg")
export const Png = kind("image/png", "image", "png")
export const Webp = kind("image/webp", "image", "webp")
export const Gif = kind("image/gif", "image", "gif")
export const Pdf = kind("application/pdf", "document", "pdf")
export const Text = kind("text/plain", "document", "txt")
export const Docx = kind("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "document", "docx")
export const Xlsx = kind("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "document", "xlsx")

/** Extensions (lower case, no dot) a file of this type may keep; anything else gets `extension` appended. */
export const extensionsOf: Readonly<Record<MimeType, ReadonlyArray<string>>> = {
  "image/jpeg": ["jpg", "jpeg", "jpe", "jfif"],
  "image/png": ["png"],
  "image/webp": ["webp"],
  "image/gif": ["gif"],
  "application/pdf": ["pdf"],
  "text/plain": ["txt", "text", "log", "md", "markdown", "csv", "tsv"],
  "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ["docx"],
  "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ["xlsx"]
}

const startsWith = (bytes: Uint8Array, prefix: ReadonlyArray<number>, at = 0): boolean =>
  bytes.length >= at + prefix.length && prefix.every((b, i) => bytes[at + i] === b)

const ascii = (text: string): ReadonlyArray<number> => Array.from(text, (c) => c.charCodeAt(0))

const PNG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, ...[0, 0, 0, 13], ...ascii("IHDR")]
const GIF87 = ascii("GIF87a")
const GIF89 = ascii("GIF89a")
const RIFF = ascii("RIFF")
const WEBP = ascii("WEBP")
const PDF = ascii("%PDF-")
const ZIP_ENTRY = [0x50, 0x4b, 0x03, 0x04]
const ZIP_CENTRAL = [0x50, 0x4b, 0x01, 0x02]
const ZIP_END = [0x50, 0x4b, 0x05, 0x06]

/**
 * The type of an upload, decided from its first bytes (`SNIFF_BYTES` of them, or the whole file),
 * never from the client's claim. Undefined for anything not accepted: other formats, executables,
 * archives that are not DOCX/XLSX, text that looks like HTML/XML/SVG, empty files.
 */
export const sniff = (head: Uint8Array): FileKind | undefined => {
  if (startsWith(head, [0xff, 0xd8, 0xff])) return Jpeg
  if (startsWith(head, PNG)) return Png
  if (startsWith(head, GIF87) || startsWith(head, GIF89)) return Gif
  if (startsWith(head, RIFF) && startsWith(head, WEBP, 8) && isWebpChunk(head)) return Webp
  if (startsWith(head, PDF)) return Pdf
  if (startsWith(head, ZIP_ENTRY)) return officeKind(zipEntryNames(head))
  return isPlainText(head, head.length >= SNIFF_BYTES) ? Text : undefined
}

const isWebpChunk = (head: Uint8Array) =>
  startsWith(head, ascii("VP8 "), 12) || startsWith(head, ascii("VP8L"), 12) || startsWith(head, ascii("VP8X"), 12)

const u16 = (bytes: Uint8Array, at: number) => (bytes[at] ?? 0) | ((bytes[at + 1] ?? 0) << 8)
const u32 = (bytes: Uint8Array, at: number) => u16(bytes, at) + u16(bytes, at + 2) * 0x10000

interface ZipListing {
  readonly names: ReadonlyArray<string>
  /** The central directory was reached: `names` are all the archive's entries. */
  readonly complete: boolean
}

/**
 * The entry names of the local file headers within `head`. Writers that stream (bit 3: sizes in a
 * data descriptor after the data) leave the size at 0, so the next header is found by its signature.
 */
const zipEntryNames = (head: Uint8Array): ZipListing => {
  const names: Array<string> = []
  const latin1 = new TextDecoder("latin1")
  let at = 0
  while (startsWith(head, ZIP_ENTRY, at)) {
    const flags = u16(head, at + 6)
    const compressedSize = u32(head, at + 18)
    const nameLength = u16(head, at + 26)
    const extraLength = u16(head, at + 28)
    const nameStart = at + 30
    if (nameStart + nameLength > head.length) break
    names.push(latin1.decode(head.subarray(nameStart, nameStart + nameLength)))
    const dataStart = nameStart + nameLength + extraLength
    at = (flags & 0x08) !== 0 && compressedSize === 0
      ? nextSignature(head, dataStart)
      : dataStart + compressedSize + ((flags & 0x08) !== 0 ? dataDescriptorLength(head, dataStart + compressedSize) : 0)
  }
  return { names, complete: startsWith(head, ZIP_CENTRAL, at) || startsWith(head, ZIP_END, at) }
}

const dataDescriptorLength = (head: Uint8Array, at: number) => (startsWith(head, [0x50, 0x4b, 0x07, 0x08], at) ? 16 : 12)

const nextSignature = (head: Uint8Array, from: number): number => {
  for (let at = head.indexOf(0x50, from); at !== -1; at = head.indexOf(0x50, at + 1)) {
    if (startsWith(head, ZIP_ENTRY, at) || startsWith(head, ZIP_CENTRAL, at) || startsWith(head, ZIP_END, at)) {
      return at
    }
  }
  return head.length
}

/**
 * DOCX has a `word/` part, XLSX an `xl/` part. `[Content_Types].xml` must be there too when the
 * whole archive was seen; in a longer file it may lie past the head (openpyxl writes it last).
 * Macro-enabled documents (`vbaProject.bin`) are refused as far as the head shows them.
 */
const officeKind = ({ complete, names }: ZipListing): FileKind | undefined => {
  if (complete && !names.includes("[Content_Types].xml")) return undefined
  if (names.some((name) => name.toLowerCase().endsWith("vbaproject.bin"))) return undefined
  const word = names.some((name) => name.startsWith("word/"))
  const excel = names.some((name) => name.startsWith("xl/"))
  return word && !excel ? Docx : excel && !word ? Xlsx : undefined
}

/**
 * Browsers treat a text body starting with one of these as HTML or XML when they sniff (WHATWG MIME
 * Sniffing, "identifying a resource with an unknown MIME type"). Such files are refused rather than
 * stored as text: served once without `nosniff` (a proxy, a CDN), or saved and opened, they would run.
 */
const markupStart =
  /^\s*<(?:(?:!doctype|html|head|script|iframe|h1|div|font|table|a|style|title|b|body|br|p|svg)(?:[\s/>]|$)|\?xml|!--)/i

// C0 controls other than tab, LF, FF and CR.
const forbiddenControl = /[\u0000-\u0008\u000B\u000E-\u001F]/

const isPlainText = (head: Uint8Array, truncated: boolean): boolean => {
  if (head.length === 0) return false
  let text: string
  try {
    // `stream: true` keeps a multi-byte sequence cut at the end of a truncated head from failing.
    text = new TextDecoder("utf-8", { fatal: true }).decode(head, { stream: truncated })
  } catch {
    return false
  }
  return !forbiddenControl.test(text) && !markupStart.test(text)
}

const essence = (mime: string): string => (mime.split(";")[0] ?? "").trim().toLowerCase()

const aliases: Readonly<Record<string, MimeType>> = {
  "image/jpg": "image/jpeg",
  "image/pjpeg": "image/jpeg",
  "text/csv": "text/plain",
  "text/markdown": "text/plain",
  "text/x-markdown": "text/plain",
  "text/tab-separated-values": "text/plain",
  // What Windows browsers claim for `.csv` when Excel is installed.
  "application/vnd.ms-excel": "text/plain"
}

/** No claim, or one that says nothing about the type. */
export const isGenericClaim = (claimed: string | undefined): boolean => {
  const mime = claimed === undefined ? "" : essence(claimed)
  return mime === "" || mime === "application/octet-stream" || mime === "binary/octet-stream"
}

/** The client's `Content-Type` is absent, generic, or names the type the bytes turned out to be. */
export const claimMatches = (claimed: string | undefined, sniffed: FileKind): boolean => {
  if (claimed === undefined || isGenericClaim(claimed)) return true
  const mime = essence(claimed)
  return (aliases[mime] ?? mime) === sniffed.mimeType
}
