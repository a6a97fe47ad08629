import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import { Schema } from "effect"
import type { ClientAnswer } from "../ClientErrors.js"
import { message } from "../Errors.js"
import { AttachmentId } from "./Model.js"

export class AttachmentNotFound extends Schema.TaggedError<AttachmentNotFound>()(
  "AttachmentNotFound",
  { id: AttachmentId, message: message("Attachment not found") },
  HttpApiSchema.annotations({ status: 404 })
) {
  get answer(): ClientAnswer {
    return { code: "AttachmentNotFound", message: this.message }
  }
}

/** Already the attachment of another message, or not the kind the message's type needs. */
export class AttachmentUnavailable extends Schema.TaggedError<AttachmentUnavailable>()(
  "AttachmentUnavailable",
  { id: AttachmentId, message: message("The attachment cannot be used for this message") },
  HttpApiSchema.annotations({ status: 409 })
) {
  get answer(): ClientAnswer {
    return { code: "AttachmentUnavailable", message: this.message }
  }
}

export class AttachmentTooLarge extends Schema.TaggedError<AttachmentTooLarge>()(
  "AttachmentTooLarge",
  { maxBytes: Schema.Int, message: message("The file is too large") },
  HttpApiSchema.annotations({ status: 413 })
) {}

export class UnsupportedMediaType extends Schema.TaggedError<UnsupportedMediaType>()(
  "UnsupportedMediaType",
  {
    message: message(
      "Only JPEG, PNG, WebP and GIF images and PDF, plain text, DOCX and XLSX documents are accepted, sent as what they are"
    )
  },
  HttpApiSchema.annotations({ status: 415 })
) {}

/** The upload request carries no file (an empty body, or a form without a file part). */
export class MissingFile extends Schema.TaggedError<MissingFile>()(
  "MissingFile",
  { message: message("The request carries no file") },
  HttpApiSchema.annotations({ status: 400 })
) {}
