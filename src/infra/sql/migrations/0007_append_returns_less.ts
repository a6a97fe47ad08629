import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

/**
 * Appends answer with what the caller does not already know, and the unread rows lose their index.
 *
 * `append_messages_v2` is `append_messages` (0006) returning each stored message's ord, id, seq and creation
 * time (epoch milliseconds): the caller sent everything else, and formatting, sending and parsing 15 columns
 * per row was a tenth of the statement's cost on both sides. The old function stays for instances of the
 * previous version still running during a rolling deploy; a later migration drops it.
 *
 * `messages_unread_idx` went into every append (every new message is unread) for the sake of marking read up
 * to a seq. That now reads the seq range after the reader's read_seq on the (conversation_id, seq) key:
 * everything addressed to the reader at or below its read_seq is read already (only marking read up to a seq
 * moves it, and that marks all of them).
 */
export default Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql`
    CREATE FUNCTION append_messages_v2(
      p_ord int[], p_conversation uuid[], p_sender uuid[], p_receiver uuid[], p_content text[],
      p_type text[], p_client_id text[], p_file_url text[], p_file_name text[], p_preview text[]
    ) RETURNS TABLE (ord int, id uuid, seq int, created_at float8)
    LANGUAGE plpgsql
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
      ), keyed AS MATERIALIZED (
        SELECT array_agg(l.id) AS ids, array_agg(l.last_seq) AS last_seqs, array_agg(l.user_id) AS user_ids,
               array_agg(l.trainer_id) AS trainer_ids, array_agg(l.status::text) AS statuses
        FROM locked l
      ), placed AS (
        SELECT i.*, array_position(k.ids, i.conversation_id) AS at, k.last_seqs, k.user_ids, k.trainer_ids, k.statuses
        FROM input i CROSS JOIN keyed k
      ), numbered AS MATERIALIZED (
        SELECT p.ord, p.conversation_id, p.sender_id, p.receiver_id, p.content, p.type, p.client_message_id,
               p.file_url, p.file_name, p.preview, p.user_ids[p.at] AS user_id, p.trainer_ids[p.at] AS trainer_id,
               gen_random_uuid() AS id,
               (p.last_seqs[p.at] + row_number() OVER (PARTITION BY p.conversation_id ORDER BY p.ord))::int AS seq
        FROM placed p
        WHERE p.at IS NOT NULL AND CASE WHEN p.type = 'system'
          THEN p.receiver_id IS NULL
          ELSE p.statuses[p.at] = 'active' AND (
            (p.sender_id = p.user_ids[p.at] AND p.receiver_id = p.trainer_ids[p.at])
            OR (p.sender_id = p.trainer_ids[p.at] AND p.receiver_id = p.user_ids[p.at]))
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
        INSERT INTO messages AS m (id, conversation_id, seq, sender_id, receiver_id, content, type, client_message_id,
                                   file_url, file_name, created_at, updated_at)
        SELECT n.id, n.conversation_id, n.seq, n.sender_id, n.receiver_id, n.content, n.type::message_type,
               n.client_message_id, n.file_url, n.file_name, now(), now()
        FROM numbered n
      )
      SELECT n.ord, n.id, n.seq, floor(extract(epoch FROM now()) * 1000)::float8 FROM numbered n;
    END
    $fn$;

    DROP INDEX messages_unread_idx;
  `
)
