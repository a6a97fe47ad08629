import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Multipart from "@effect/platform/Multipart"
import { Effect, Option, Stream } from "effect"
import { Attachments, type Upload, type Variant } from "../../domain/attachments/Attachments.js"
import { AttachmentTooLarge, MissingFile } from "../../domain/attachments/Errors.js"
import { contentDisposition } from "../../domain/attachments/FileName.js"
import { type Attachment, urlOf } from "../../domain/attachments/Model.js"
import type { ByteRange } from "../../domain/ports/Storage.js"
import { nextChunk } from "../../domain/Streams.js"
import { Api } from "../Api.js"
import { withRetryAfter } from "../RetryAfter.js"
import { CurrentUser } from "../Security.js"
import { AttachmentJson, RangeNotSatisfiable } from "./Api.js"

const present = (a: Attachment) =>
  new AttachmentJson({
    id: a.id,
    kind: a.kind,
    fileName: a.fileName,
    mimeType: a.mimeType,
    size: a.size,
    url: urlOf(a.id),
    thumbnailUrl: a.thumbnailKey === null ? null : `${urlOf(a.id)}?size=thumb`,
    createdAt: a.createdAt
  })

/** A form's boundaries and part headers take some bytes besides the file: this many, at most, in practice. */
const FORM_OVERHEAD = 16 * 1024

/** The `filename` of a `Content-Disposition` header (RFC 6266), the UTF-8 `filename*` first. */
const dispositionName = (header: string | undefined): string | undefined => {
  if (header === undefined) return undefined
  const extended = /filename\*\s*=\s*UTF-8''([^;]+)/i.exec(header)?.[1]
  if (extended !== undefined) {
    try {
      return decodeURIComponent(extended.trim())
    } catch {
      // Not valid percent-encoding: fall back to the plain name.
    }
  }
  return /filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]+))/i.exec(header)?.slice(1).find((v) => v !== undefined)?.trim()
}

const multipartFailure = (error: Multipart.MultipartError) => {
  switch (error.reason) {
    case "FileTooLarge":
    case "BodyTooLarge":
      return new AttachmentTooLarge({ maxBytes: 0, message: "The form is too large" })
    case "TooManyParts":
    case "FieldTooLarge":
      return new MissingFile({ message: "The form must carry one file part (and at most a few small fields)" })
    default:
      return new MissingFile({ message: "The form could not be read as multipart/form-data" })
  }
}

/**
 * `Range: bytes=…` against a file of `size` bytes: a single range is served (206); several ranges,
 * or a header that is not a byte range, are ignored (the whole file, 200); a range wholly past the
 * end is unsatisfiable (416).
 */
export const parseRange = (header: string | undefined, size: number): ByteRange | "unsatisfiable" | undefined => {
  const match = header === undefined ? null : /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header)
  if (match === null) return undefined
  const [, from = "", to = ""] = match
  if (from === "" && to === "") return undefined
  if (from === "") {
    const suffix = Number(to)
    if (suffix === 0) return "unsatisfiable"
    return { start: Math.max(0, size - suffix), end: size - 1 }
  }
  const start = Number(from)
  const end = to === "" ? size - 1 : Math.min(Number(to), size - 1)
  if (to !== "" && Number(to) < start) return undefined
  return start >= size ? "unsatisfiable" : { start, end }
}

export const AttachmentsLive = HttpApiBuilder.group(Api, "attachments", (handlers) =>
  Effect.gen(function*() {
    const attachments = yield* Attachments

    /** The one file of a form, streamed: the form is read only as far as its first file part. */
    const formUpload = (parts: Stream.Stream<Multipart.Part, Multipart.MultipartError>, declared: number | undefined) =>
      Effect.gen(function*() {
        const pull = yield* Stream.toPull(parts)
        while (true) {
          const next = yield* nextChunk(pull)
          if (Option.isNone(next)) return yield* new MissingFile({ message: "The form carries no file part" })
          const file = next.value.pipe((chunk) => Array.from(chunk).find(Multipart.isFile))
          if (file !== undefined) {
            return {
              body: file.content,
              claimedType: file.contentType,
              fileName: file.name,
              declaredSize: declared === undefined ? undefined : Math.max(0, declared - FORM_OVERHEAD)
            } satisfies Upload<Multipart.MultipartError>
          }
        }
      })

    const upload = <E>(file: Upload<E>) =>
      Effect.flatMap(CurrentUser, (actor) => withRetryAfter(attachments.upload(actor, file)))

    return handlers
      .handle("upload", ({ payload, request, urlParams }) =>
        Effect.gen(function*() {
          const contentType = request.headers["content-type"]
          const length = Number(request.headers["content-length"] ?? Number.NaN)
          const declared = Number.isSafeInteger(length) && length >= 0 ? length : undefined
          const stored = contentType !== undefined && /^multipart\/form-data/i.test(contentType)
            ? yield* Effect.flatMap(
              formUpload(
                Multipart.withLimitsStream(payload, { maxParts: Option.some(8), maxTotalSize: Option.none() }),
                declared
              ),
              upload
            ).pipe(Effect.scoped, Effect.catchTag("MultipartError", (error) => Effect.fail(multipartFailure(error))))
            : yield* upload({
              body: request.stream,
              claimedType: contentType,
              fileName: urlParams.fileName ?? dispositionName(request.headers["content-disposition"]),
              declaredSize: declared
            }).pipe(
              Effect.catchTag("RequestError", () => Effect.fail(new MissingFile({ message: "The upload was cut off" })))
            )
          return present(stored)
        }))
      .handle("download", ({ path, request, urlParams }) =>
        Effect.gen(function*() {
          const actor = yield* CurrentUser
          const attachment = yield* attachments.authorize(actor, path.id)
          const variant: Variant = urlParams.size === "thumb" ? "thumbnail" : "original"
          const etag = `"${attachment.id}-${variant}"`
          const common = {
            "cache-control": "private, max-age=3600",
            etag,
            "x-content-type-options": "nosniff",
            "content-security-policy": "default-src 'none'; sandbox",
            "accept-ranges": variant === "original" ? "bytes" : "none"
          }
          // The bytes behind an id never change: a client holding them needs no second copy.
          if (request.headers["if-none-match"] === etag) {
            return HttpServerResponse.empty({ status: 304, headers: common })
          }
          const range = variant === "original" ? parseRange(request.headers.range, attachment.size) : undefined
          if (range === "unsatisfiable") {
            return HttpServerResponse.unsafeJson(new RangeNotSatisfiable({ size: attachment.size }), {
              status: 416,
              headers: { "content-range": `bytes */${attachment.size}` }
            })
          }
          const file = yield* attachments.read(attachment, variant, range)
          const length = range === undefined ? file.size : range.end - range.start + 1
          return HttpServerResponse.stream(file.body, {
            status: range === undefined ? 200 : 206,
            contentType: variant === "thumbnail" ? "image/webp" : attachment.mimeType,
            headers: {
              ...common,
              "content-length": String(length),
              "content-disposition": contentDisposition(
                attachment.kind === "image" ? "inline" : "attachment",
                variant === "thumbnail" ? `thumb-${attachment.fileName}.webp` : attachment.fileName
              ),
              ...(range === undefined ? {} : { "content-range": `bytes ${range.start}-${range.end}/${file.size}` })
            }
          })
        }))
  }))
