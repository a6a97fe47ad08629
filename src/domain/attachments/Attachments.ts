import { randomUUID } from "node:crypto"
import { Chunk, Config, DateTime, Duration, Effect, Option, Schedule, Stream } from "effect"
import { ConversationNotFound } from "../chat/Errors.js"
import { nextChunk } from "../Streams.js"
import { Messages } from "../chat/Messages.js"
import { AttachmentsRepo } from "../ports/AttachmentsRepo.js"
import { AuditLog } from "../ports/AuditLog.js"
import { Images } from "../ports/Images.js"
import { RateLimiter } from "../ports/RateLimiter.js"
import { type ByteRange, Storage } from "../ports/Storage.js"
import type { User } from "../users/Model.js"
import { AttachmentNotFound, AttachmentTooLarge, MissingFile, UnsupportedMediaType } from "./Errors.js"
import { ensureExtension, sanitizeFileName } from "./FileName.js"
import { claimMatches, sniff, SNIFF_BYTES } from "./FileType.js"
import { stripJpegMetadata } from "./JpegMetadata.js"
import { type Attachment, AttachmentId } from "./Model.js"

export const AttachmentsConfig = Config.all({
  maxImageBytes: Config.integer("ATTACHMENT_MAX_IMAGE_BYTES").pipe(Config.withDefault(10 * 1024 * 1024)),
  maxDocumentBytes: Config.integer("ATTACHMENT_MAX_DOCUMENT_BYTES").pipe(Config.withDefault(25 * 1024 * 1024)),
  /** Uploads never sent in a message are removed after this long. */
  unattachedTtl: Config.duration("ATTACHMENT_UNATTACHED_TTL").pipe(Config.withDefault(Duration.hours(24))),
  cleanupEvery: Config.duration("ATTACHMENT_CLEANUP_INTERVAL").pipe(Config.withDefault(Duration.minutes(10))),
  uploadLimit: Config.integer("UPLOAD_RATE_LIMIT").pipe(Config.withDefault(30)),
  uploadWindow: Config.duration("UPLOAD_RATE_WINDOW").pipe(Config.withDefault(Duration.minutes(1)))
})

/** The largest body an upload request may have: the largest file plus room for a form's parts. */
export const uploadBodyCap = (config: Config.Config.Success<typeof AttachmentsConfig>) =>
  Math.max(config.maxImageBytes, config.maxDocumentBytes) + 1024 * 1024

/** An upload as a door receives it: the bytes as they arrive, and what the client says about them. */
export interface Upload<E> {
  readonly body: Stream.Stream<Uint8Array, E>
  /** The client's Content-Type for the file: checked against the bytes, never trusted. */
  readonly claimedType?: string | undefined
  readonly fileName?: string | undefined
  /** The body's length when the request announced it: too large is refused before reading. */
  readonly declaredSize?: number | undefined
}

/** What one of the two keys of an attachment holds. */
export type Variant = "original" | "thumbnail"

export class Attachments extends Effect.Service<Attachments>()("Chat/Attachments", {
  scoped: Effect.gen(function*() {
    const config = yield* AttachmentsConfig
    const repo = yield* AttachmentsRepo
    const storage = yield* Storage
    const images = yield* Images
    const messages = yield* Messages
    const audit = yield* AuditLog
    const limiter = yield* RateLimiter

    const tooLarge = (maxBytes: number) =>
      new AttachmentTooLarge({ maxBytes, message: `The file is too large: at most ${maxBytes} bytes for its type` })

    /** The first bytes of `body` (up to SNIFF_BYTES, fewer when it is shorter) and the whole of it again. */
    const peek = <E>(body: Stream.Stream<Uint8Array, E>) =>
      Effect.gen(function*() {
        const pull = yield* Stream.toPull(body)
        const head: Array<Uint8Array> = []
        let size = 0
        let ended = false
        while (!ended && size < SNIFF_BYTES) {
          const next = yield* nextChunk(pull)
          if (Option.isNone(next)) ended = true
          else for (const chunk of next.value) (head.push(chunk), size += chunk.byteLength)
        }
        const rest = ended ? Stream.empty : Stream.repeatEffectChunkOption(pull)
        return { head: Buffer.concat(head).subarray(0, SNIFF_BYTES), whole: Stream.concat(Stream.fromIterable(head), rest) }
      })

    /** Fails the stream once more than `max` bytes went through it: nothing beyond is read. */
    const limited = <E>(body: Stream.Stream<Uint8Array, E>, max: number) =>
      Stream.suspend(() => {
        let size = 0
        return Stream.mapEffect(body, (chunk) => {
          size += chunk.byteLength
          return size > max ? Effect.fail(tooLarge(max)) : Effect.succeed(chunk)
        })
      })

    const removeFiles = (attachment: { readonly storageKey: string; readonly thumbnailKey: string | null }) =>
      Effect.all([
        storage.remove(attachment.storageKey),
        attachment.thumbnailKey === null ? Effect.void : storage.remove(attachment.thumbnailKey)
      ], { discard: true })

    /**
     * Stores an upload: its type from its bytes (a claim that disagrees is refused), its size within
     * its type's limit, JPEG metadata (EXIF, GPS, XMP, IPTC) removed on the way, and a thumbnail for
     * images. The file streams to storage; only the first bytes are held to recognise it.
     */
    const upload = <E>(actor: User, file: Upload<E>) =>
      Effect.gen(function*() {
        yield* limiter.hit({ bucket: "upload:user", max: config.uploadLimit, window: config.uploadWindow }, actor.id)
        const largest = Math.max(config.maxImageBytes, config.maxDocumentBytes)
        if (file.declaredSize !== undefined && file.declaredSize > largest) return yield* tooLarge(largest)
        const { head, whole } = yield* peek(file.body)
        if (head.byteLength === 0) return yield* new MissingFile()
        const type = sniff(head)
        if (type === undefined || !claimMatches(file.claimedType, type)) return yield* new UnsupportedMediaType()
        const max = type.kind === "image" ? config.maxImageBytes : config.maxDocumentBytes
        if (file.declaredSize !== undefined && file.declaredSize > max) return yield* tooLarge(max)

        const id = AttachmentId.make(randomUUID())
        const keys = { storageKey: `${id}/original`, thumbnailKey: type.kind === "image" ? `${id}/thumbnail` : null }
        const body = limited(whole, max)
        const stored = yield* storage.put(
          keys.storageKey,
          type.mimeType === "image/jpeg" ? stripJpegMetadata(body) : body,
          { contentType: type.mimeType }
        ).pipe(Effect.catchTag("InvalidJpeg", () => Effect.fail(new UnsupportedMediaType())))

        return yield* Effect.gen(function*() {
          if (keys.thumbnailKey !== null) {
            const original = yield* storage.get(keys.storageKey)
            if (Option.isNone(original)) return yield* Effect.dieMessage("A stored upload vanished before its thumbnail")
            const bytes = Buffer.concat(Chunk.toReadonlyArray(yield* Stream.runCollect(original.value.body)))
            // Decodable by its header yet not as pixels: not the image it claims to be.
            const thumbnail = yield* images.thumbnail(bytes).pipe(
              Effect.catchTag("ImageUnreadable", () => Effect.fail(new UnsupportedMediaType()))
            )
            yield* storage.put(keys.thumbnailKey, Stream.make(thumbnail.bytes), { contentType: thumbnail.mimeType })
          }
          return yield* repo.insert({
            id,
            uploaderId: actor.id,
            kind: type.kind,
            mimeType: type.mimeType,
            fileName: ensureExtension(sanitizeFileName(file.fileName, type.extension), type),
            size: stored.size,
            ...keys,
            messageId: null,
            conversationId: null,
            createdAt: undefined
          })
        }).pipe(
          // Whatever went wrong after the bytes were stored, they do not stay behind.
          Effect.onError(() => Effect.ignore(removeFiles(keys)))
        )
      }).pipe(Effect.scoped, Effect.catchTag("StorageError", Effect.die), Effect.withSpan("Attachments.upload"))

    /**
     * The attachment, if the actor may see it: the conversation's participants and admins (audited)
     * once it is sent; only its uploader before. Everyone else gets not-found.
     */
    const authorize = Effect.fn("Attachments.authorize")(function*(actor: User, id: AttachmentId) {
      const found = yield* repo.findById(id)
      if (Option.isNone(found)) return yield* new AttachmentNotFound({ id })
      const attachment = found.value
      if (attachment.conversationId === null) {
        if (attachment.uploaderId !== actor.id) return yield* new AttachmentNotFound({ id })
        return attachment
      }
      const { level } = yield* messages.access(actor, attachment.conversationId).pipe(
        Effect.catchIf(
          (error): error is ConversationNotFound => error instanceof ConversationNotFound,
          () => Effect.fail(new AttachmentNotFound({ id }))
        )
      )
      if (level === "admin") {
        yield* audit.record({ actorId: actor.id, action: "attachment.view", targetId: id, details: null })
      }
      return attachment
    })

    /** The bytes of an authorized attachment (or of its thumbnail), whole or a range of them. */
    const read = Effect.fn("Attachments.read")(
      function*(attachment: Attachment, variant: Variant, range?: ByteRange) {
        const key = variant === "original" ? attachment.storageKey : attachment.thumbnailKey
        if (key === null) return yield* new AttachmentNotFound({ id: attachment.id, message: "This attachment has no thumbnail" })
        const file = yield* storage.get(key, range)
        if (Option.isNone(file)) return yield* Effect.dieMessage(`Attachment ${attachment.id}: its ${variant} is missing from storage`)
        return file.value
      },
      Effect.catchTag("StorageError", Effect.die)
    )

    /** Removes uploads nobody sent within the allowed time, rows first (a send can no longer take them), then files. */
    const cleanUp = Effect.gen(function*() {
      const olderThan = DateTime.subtractDuration(yield* DateTime.now, config.unattachedTtl)
      let removed = 0
      while (true) {
        const orphans = yield* repo.takeOrphans(olderThan, 100)
        yield* Effect.forEach(orphans, (orphan) => removeFiles(orphan).pipe(
          Effect.catchAll((error) => Effect.logWarning(`Could not remove the files of attachment ${orphan.id}`, error))
        ), { concurrency: 4, discard: true })
        removed += orphans.length
        if (orphans.length < 100) break
      }
      if (removed > 0) yield* Effect.logInfo(`Removed ${removed} unsent uploads`)
      return removed
    }).pipe(Effect.withSpan("Attachments.cleanUp"))

    yield* cleanUp.pipe(
      Effect.catchAllCause((cause) => Effect.logWarning("Cleaning up unsent uploads failed", cause)),
      Effect.repeat(Schedule.spaced(config.cleanupEvery)),
      Effect.delay(config.cleanupEvery),
      Effect.forkScoped
    )

    return { upload, authorize, read, cleanUp } as const
  })
}) {}
