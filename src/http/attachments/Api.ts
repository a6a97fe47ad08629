import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as Multipart from "@effect/platform/Multipart"
import * as OpenApi from "@effect/platform/OpenApi"
import { Schema } from "effect"
import {
  AttachmentNotFound,
  AttachmentTooLarge,
  MissingFile,
  UnsupportedMediaType
} from "../../domain/attachments/Errors.js"
import { extensionsOf } from "../../domain/attachments/FileType.js"
import { AttachmentId, AttachmentKind } from "../../domain/attachments/Model.js"
import { RateLimited } from "../../domain/Errors.js"
import { optional } from "../Schemas.js"
import { Authentication } from "../Security.js"

/** An uploaded file, as its uploader gets it back: `id` goes into an image or file message. */
export class AttachmentJson extends Schema.Class<AttachmentJson>("Attachment")({
  id: AttachmentId,
  kind: AttachmentKind,
  fileName: Schema.String,
  mimeType: Schema.String,
  size: Schema.Int,
  /** Where to download it (relative to the API's base URL): the message's `fileUrl`. */
  url: Schema.String,
  /** A small preview of an image (WebP, at most 320 px); null for documents. */
  thumbnailUrl: Schema.NullOr(Schema.String),
  createdAt: Schema.DateTimeUtc
}) {}

export const UploadParams = Schema.Struct({
  /** The file's name when the body is the file itself (a form carries it in its file part). */
  fileName: optional(Schema.String.pipe(Schema.maxLength(1000)))
}).annotations({ parseOptions: { onExcessProperty: "error", errors: "all" } })

export const DownloadParams = Schema.Struct({
  size: optional(Schema.Literal("thumb").annotations({ message: () => "must be thumb (or absent, for the file)" }))
}).annotations({ parseOptions: { onExcessProperty: "error", errors: "all" } })

/** The Range asked for lies outside the file. */
export class RangeNotSatisfiable extends Schema.TaggedError<RangeNotSatisfiable>()(
  "RangeNotSatisfiable",
  { size: Schema.Int, message: Schema.optionalWith(Schema.String, { default: () => "The range lies outside the file" }) },
  HttpApiSchema.annotations({ status: 416 })
) {}

const id = HttpApiSchema.param("id", AttachmentId)

const binary = { schema: { type: "string", format: "binary" } }
/** The stored types, as uploads are accepted and downloads served. */
const fileTypes = Object.keys(extensionsOf)
const asFiles = Object.fromEntries(fileTypes.map((type) => [type, binary]))

type Operation = Record<string, any>

/** The raw-body upload beside the form: the file itself, with its type (the generator knows only the form). */
const describeUpload = (op: Operation): Operation => ({
  ...op,
  requestBody: { ...op.requestBody, content: { ...op.requestBody?.content, ...asFiles } }
})

/** A download is the stored file with its own type, whole (200), a range of it (206), or not modified (304). */
const describeDownload = (op: Operation): Operation => {
  const file = {
    headers: {
      "Content-Disposition": { schema: { type: "string" }, description: "inline for images, attachment for documents" },
      ETag: { schema: { type: "string" } }
    },
    content: asFiles
  }
  return {
    ...op,
    parameters: [
      ...(op.parameters ?? []),
      { name: "Range", in: "header", required: false, schema: { type: "string" }, description: "bytes=start-end: 206 with that part" },
      { name: "If-None-Match", in: "header", required: false, schema: { type: "string" }, description: "the ETag of a copy held: 304" }
    ],
    responses: {
      ...op.responses,
      "200": { description: "The file, with its stored Content-Type", ...file },
      "206": {
        description: "The requested range of the file",
        headers: { ...file.headers, "Content-Range": { schema: { type: "string" } } },
        content: asFiles
      },
      "304": { description: "Not modified: the copy with that ETag is current" }
    }
  }
}

/** Where uploads go: their bodies stream, within their own size limit rather than the JSON bodies' one. */
export const uploadPath = "/chat/attachments"

export class AttachmentsApi extends HttpApiGroup.make("attachments")
  .add(
    HttpApiEndpoint.post("upload", "/attachments")
      .setPayload(HttpApiSchema.MultipartStream(Schema.Struct({ file: Multipart.SingleFileSchema })))
      .setUrlParams(UploadParams)
      .addSuccess(AttachmentJson, { status: 201 })
      .addError(MissingFile)
      .addError(AttachmentTooLarge)
      .addError(UnsupportedMediaType)
      .addError(RateLimited)
      .annotate(OpenApi.Summary, "Upload an image or a document, to send it in a message next")
      .annotate(OpenApi.Transform, describeUpload)
      .annotate(
        OpenApi.Description,
        "Either multipart/form-data with one file part, or the file itself as the body with its Content-Type " +
          "and ?fileName= (or a Content-Disposition filename). Images: JPEG, PNG, WebP, GIF up to 10 MB; " +
          "documents: PDF, plain text, DOCX, XLSX up to 25 MB (limits are configurable). The type is read " +
          "from the bytes: a claim that disagrees, or another type, gets 415. JPEG metadata (EXIF, GPS) is " +
          "removed. An upload not sent in a message within ATTACHMENT_UNATTACHED_TTL (24 h) is deleted."
      )
  )
  .add(
    HttpApiEndpoint.get("download")`/attachments/${id}`
      .setUrlParams(DownloadParams)
      .addSuccess(
        Schema.Uint8ArrayFromSelf.pipe(HttpApiSchema.withEncoding({ kind: "Uint8Array", contentType: "application/octet-stream" }))
      )
      .addError(AttachmentNotFound)
      .addError(RangeNotSatisfiable)
      .annotate(OpenApi.Summary, "Download an attachment (participants and admins; its uploader before it is sent)")
      .annotate(OpenApi.Transform, describeDownload)
      .annotate(
        OpenApi.Description,
        "Answers with the file's own Content-Type; images inline, documents as a download. Supports " +
          "Range: bytes=… (206). ?size=thumb gives an image's thumbnail."
      )
  )
  .middleware(Authentication)
  .prefix("/chat")
  .annotate(OpenApi.Title, "Attachments")
{}
