import { wellFormed } from "../Fields.js"
import { extensionsOf, type FileKind } from "./FileType.js"

export const MAX_FILE_NAME_LENGTH = 200

const control = /[\u0000-\u001F\u007F-\u009F]/g
// Bidi embeddings, overrides and isolates ("\u202Egnp.exe" shows as "exe.png"), direction marks, and
// invisible characters that could hide an extension.
const invisible = /[\u061C\u200B\u200E\u200F\u202A-\u202E\u2060\u2066-\u2069\uFEFF]/g
// Not allowed in Windows file names; `"` would also end a quoted header parameter.
const reserved = /[<>:"|?*]/g
const extension = /\.[^.\s]{1,16}$/

const truncate = (name: string, max: number): string => {
  const chars = Array.from(name)
  if (chars.length <= max) return name
  const ext = extension.exec(name)?.[0] ?? ""
  return chars.slice(0, max - Array.from(ext).length).join("").trimEnd() + ext
}

/**
 * A file name safe to store and show: the last path segment only, without control, bidi or
 * invisible characters, leading dots, or characters Windows refuses; whitespace collapsed, NFC,
 * at most 200 characters (the extension kept), never empty (`file.<fallbackExtension>`).
 */
export const sanitizeFileName = (raw: string | undefined, fallbackExtension: string): string => {
  const path = wellFormed(raw ?? "").normalize("NFC")
  const name = path
    .slice(Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\")) + 1)
    .replace(control, " ")
    .replace(invisible, "")
    .replace(reserved, "_")
    .replace(/\s+/gu, " ")
    .replace(/^[.\s]+|[.\s]+$/g, "")
  const short = truncate(name, MAX_FILE_NAME_LENGTH)
  if (short !== "") return short
  const ext = fallbackExtension.replace(/^\.+/, "")
  return ext === "" ? "file" : `file.${ext}`
}

/**
 * `fileName` if its extension is one a file of `kind` may have, otherwise with the kind's
 * extension appended: a text file named `page.html` is offered for download as `page.html.txt`.
 */
export const ensureExtension = (fileName: string, kind: FileKind): string => {
  const ext = extension.exec(fileName)?.[0].slice(1).toLowerCase() ?? ""
  return extensionsOf[kind.mimeType].includes(ext)
    ? fileName
    : sanitizeFileName(`${fileName}.${kind.extension}`, kind.extension)
}

// RFC 8187 attr-char: ALPHA / DIGIT / "!" / "#" / "$" / "&" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~"
const percentEncode = (text: string): string =>
  encodeURIComponent(text).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)

const asciiFallback = (name: string): string =>
  name
    .normalize("NFKD")
    .replace(/\p{M}/gu, "")
    .replace(/[^\x20-\x7E]|["\\%]/g, "_")

/**
 * A `Content-Disposition` value (RFC 6266): a plain-ASCII `filename` for old clients and the
 * exact name as `filename*` in UTF-8. The name is sanitized again, so any string is safe here.
 */
export const contentDisposition = (kind: "inline" | "attachment", fileName: string): string => {
  const name = sanitizeFileName(fileName, "bin")
  return `${kind}; filename="${asciiFallback(name)}"; filename*=UTF-8''${percentEncode(name)}`
}
