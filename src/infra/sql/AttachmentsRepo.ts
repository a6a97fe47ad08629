import { SqlClient, SqlSchema } from "@effect/sql"
import { Effect, Layer, Schema } from "effect"
import { Attachment, AttachmentId } from "../../domain/attachments/Model.js"
import { AttachmentsRepo } from "../../domain/ports/AttachmentsRepo.js"

export const layer = Layer.effect(
  AttachmentsRepo,
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient

    const insert = SqlSchema.single({
      Request: Attachment.insert,
      Result: Attachment,
      execute: (row) => sql`INSERT INTO attachments ${sql.insert(row)} RETURNING *`
    })

    const findById = SqlSchema.findOne({
      Request: AttachmentId,
      Result: Attachment,
      execute: (id) => sql`SELECT * FROM attachments WHERE id = ${id}`
    })

    const takeOrphans = SqlSchema.findAll({
      Request: Schema.Struct({ olderThan: Schema.DateTimeUtc, limit: Schema.Int }),
      Result: Attachment,
      // SKIP LOCKED: instances cleaning at the same time split the rows instead of waiting on each other;
      // a send linking one of them right now holds its lock, so it is skipped rather than deleted under it.
      execute: ({ limit, olderThan }) =>
        sql`DELETE FROM attachments WHERE id IN (
              SELECT id FROM attachments
              WHERE message_id IS NULL AND created_at < ${olderThan}::timestamptz
              ORDER BY created_at
              LIMIT ${limit}
              FOR UPDATE SKIP LOCKED
            )
            RETURNING *`
    })

    return AttachmentsRepo.of({
      insert: (row) => insert(row).pipe(Effect.orDie, Effect.withSpan("AttachmentsRepo.insert")),
      findById: (id) => findById(id).pipe(Effect.orDie, Effect.withSpan("AttachmentsRepo.findById")),
      link: ({ conversationId, id, messageId, uploaderId }) =>
        sql`UPDATE attachments SET message_id = ${messageId}, conversation_id = ${conversationId}
            WHERE id = ${id} AND uploader_id = ${uploaderId} AND message_id IS NULL
            RETURNING id`.pipe(
          Effect.map((rows) => rows.length === 1),
          Effect.orDie,
          Effect.withSpan("AttachmentsRepo.link")
        ),
      takeOrphans: (olderThan, limit) =>
        takeOrphans({ olderThan, limit }).pipe(Effect.orDie, Effect.withSpan("AttachmentsRepo.takeOrphans"))
    })
  })
)
