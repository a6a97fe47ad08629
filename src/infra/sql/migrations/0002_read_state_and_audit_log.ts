import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

export default Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql`
    -- Read state per participant: a watermark by seq and a running unread count,
    -- so that unread counts and "mark all read" never scan a whole history.
    ALTER TABLE conversations
      ADD COLUMN user_read_seq integer NOT NULL DEFAULT 0,
      ADD COLUMN trainer_read_seq integer NOT NULL DEFAULT 0,
      ADD COLUMN user_unread integer NOT NULL DEFAULT 0,
      ADD COLUMN trainer_unread integer NOT NULL DEFAULT 0,
      ADD COLUMN closed_reason text;

    -- System messages come from no participant and go to none.
    ALTER TABLE messages
      ALTER COLUMN receiver_id DROP NOT NULL,
      ALTER COLUMN sender_id DROP NOT NULL,
      ADD CONSTRAINT messages_participants_check
        CHECK (type = 'system' OR (sender_id IS NOT NULL AND receiver_id IS NOT NULL)),
      DROP CONSTRAINT messages_sender_client_id_key,
      ADD CONSTRAINT messages_client_id_key UNIQUE (conversation_id, sender_id, client_message_id);
    DROP INDEX messages_receiver_unread_idx;
    CREATE INDEX messages_unread_idx ON messages (conversation_id, receiver_id, seq) WHERE NOT is_read;

    CREATE TABLE audit_log (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      actor_id uuid NOT NULL REFERENCES users (id),
      action text NOT NULL,
      target_id text,
      details jsonb,
      created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX audit_log_created_idx ON audit_log (created_at DESC, id DESC);

    CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION 'audit_log is append-only';
    END
    $$;
    CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
      FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
  `
)
