import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

/**
 * Appends are the hot path, so they cost Postgres as little as the guarantees allow:
 *
 * - one function does a whole batch with a cached plan (planning the statement took longer than
 *   running it for a small batch);
 * - the function checks that sender and receiver are the conversation's participants, which the
 *   row-by-row foreign keys to `users` (three trigger queries per message with the one to
 *   `conversations`, kept) only half checked;
 * - bumping a conversation's counters is a HOT update (no indexed column changes, room left on the
 *   page): the "recent" indexes on `last_message_at` made every append write four index entries.
 *   Lists sort a participant's conversations, found by `(user_id, …)` and `(trainer_id)`.
 */
export default Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql`
    ALTER TABLE messages
      DROP CONSTRAINT messages_sender_id_fkey,
      DROP CONSTRAINT messages_receiver_id_fkey;

    DROP INDEX conversations_trainer_recent_idx;
    DROP INDEX conversations_user_recent_idx;
    CREATE INDEX conversations_trainer_idx ON conversations (trainer_id);
    ALTER TABLE conversations SET (fillfactor = 70);

    -- Appends a batch in one statement. Conversations are locked in id order (no deadlock between
    -- batches); each gets its next seqs in input order (ord), and one update per conversation carries
    -- the new preview and unread counts. Left out (no row returned): a clientMessageId the sender
    -- already used in that conversation, a conversation that is gone or not active (system messages,
    -- from an admin to no one, go in whatever the status), a sender or receiver who is not its participant.
    CREATE FUNCTION append_messages(
      p_ord int[], p_conversation uuid[], p_sender uuid[], p_receiver uuid[], p_content text[],
      p_type text[], p_client_id text[], p_file_url text[], p_file_name text[], p_preview text[]
    ) RETURNS TABLE (
      ord int, id uuid, conversation_id uuid, seq int, sender_id uuid, receiver_id uuid, content text,
      type message_type, is_read boolean, read_at timestamptz, file_url text, file_name text,
      client_message_id text, created_at timestamptz, updated_at timestamptz
    )
    LANGUAGE plpgsql
    -- Planned once per connection, whatever the table sizes then: every step is a key lookup, written
    -- so (LATERAL, no seq scans) that no plan chosen for small tables scans them once they are big.
    SET plan_cache_mode = force_generic_plan
    SET enable_seqscan = off
    AS $fn$
    #variable_conflict use_column
    BEGIN
      RETURN QUERY
      WITH input AS (
        SELECT t.* FROM unnest(
          p_ord, p_conversation, p_sender, p_receiver, p_content, p_type, p_client_id, p_file_url, p_file_name,
          p_preview
        ) AS t(ord, conversation_id, sender_id, receiver_id, content, type, client_message_id, file_url, file_name,
               preview)
        LEFT JOIN LATERAL (
          SELECT true AS taken FROM messages d
          WHERE d.conversation_id = t.conversation_id AND d.sender_id = t.sender_id
            AND d.client_message_id = t.client_message_id
          LIMIT 1
        ) retried ON true
        WHERE retried.taken IS NULL
      ), locked AS MATERIALIZED (
        SELECT c.id, c.last_seq, c.user_id, c.trainer_id, c.status
        FROM (SELECT DISTINCT i.conversation_id FROM input i ORDER BY 1) wanted
        CROSS JOIN LATERAL (
          SELECT c.* FROM conversations c WHERE c.id = wanted.conversation_id FOR UPDATE
        ) c
      ), numbered AS MATERIALIZED (
        SELECT i.*, l.user_id, l.trainer_id,
               (l.last_seq + row_number() OVER (PARTITION BY i.conversation_id ORDER BY i.ord))::int AS seq
        FROM input i JOIN locked l ON l.id = i.conversation_id
        WHERE CASE WHEN i.type = 'system'
          THEN i.receiver_id IS NULL
          ELSE l.status = 'active' AND (
            (i.sender_id = l.user_id AND i.receiver_id = l.trainer_id)
            OR (i.sender_id = l.trainer_id AND i.receiver_id = l.user_id))
        END
      ), totals AS (
        SELECT n.conversation_id, max(n.seq) AS last_seq, (array_agg(n.preview ORDER BY n.seq DESC))[1] AS preview,
               count(*) FILTER (WHERE n.receiver_id = n.user_id)::int AS to_user,
               count(*) FILTER (WHERE n.receiver_id = n.trainer_id)::int AS to_trainer
        FROM numbered n GROUP BY n.conversation_id
      ), conv AS (
        UPDATE conversations c SET
          last_seq = t.last_seq, last_message_at = now(), last_message_preview = t.preview,
          user_unread = c.user_unread + t.to_user, trainer_unread = c.trainer_unread + t.to_trainer,
          updated_at = now()
        FROM totals t WHERE c.id = t.conversation_id
      ), ins AS (
        INSERT INTO messages AS m (conversation_id, seq, sender_id, receiver_id, content, type, client_message_id,
                                   file_url, file_name, created_at, updated_at)
        SELECT n.conversation_id, n.seq, n.sender_id, n.receiver_id, n.content, n.type::message_type,
               n.client_message_id, n.file_url, n.file_name, now(), now()
        FROM numbered n
        RETURNING m.*
      )
      SELECT n.ord, ins.id, ins.conversation_id, ins.seq, ins.sender_id, ins.receiver_id, ins.content, ins.type,
             ins.is_read, ins.read_at, ins.file_url, ins.file_name, ins.client_message_id, ins.created_at,
             ins.updated_at
      FROM ins JOIN numbered n ON n.conversation_id = ins.conversation_id AND n.seq = ins.seq;
    END
    $fn$;
  `
)
