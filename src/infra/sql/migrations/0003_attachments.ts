import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

export default Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql`
    -- Uploaded files. The bytes live in storage under storage_key (and thumbnail_key for images);
    -- a row without message_id is an upload not sent yet, removed after a while.
    CREATE TABLE attachments (
      id uuid PRIMARY KEY,
      uploader_id uuid NOT NULL REFERENCES users (id),
      kind text NOT NULL CHECK (kind IN ('image', 'document')),
      mime_type text NOT NULL,
      file_name text NOT NULL,
      size integer NOT NULL CHECK (size > 0),
      storage_key text NOT NULL,
      thumbnail_key text,
      message_id uuid UNIQUE REFERENCES messages (id),
      conversation_id uuid REFERENCES conversations (id),
      created_at timestamptz NOT NULL DEFAULT now(),
      CHECK ((message_id IS NULL) = (conversation_id IS NULL))
    );
    CREATE INDEX attachments_unattached_idx ON attachments (created_at) WHERE message_id IS NULL;
  `
)
