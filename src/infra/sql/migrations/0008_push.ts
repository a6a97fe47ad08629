import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

/**
 * Push notifications: devices, each user's notification settings, and push jobs written by the append itself.
 *
 * `append_messages_v3` is `append_messages_v2` (0007) that also writes the outbox in the same statement: a
 * message to a recipient with a registered device makes a pending job for (conversation, recipient), due after
 * `p_push_delay_ms` (negative: push is off, nothing is written), unless one is pending already. A rolled-back
 * append writes no job, and a committed one never misses it. The job runner decides when it is due whether
 * anything is still unread and who is online. The old function stays for instances of the previous version.
 */
export default Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql`
    CREATE TABLE push_devices (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
      platform text NOT NULL CHECK (platform IN ('fcm', 'apns', 'webpush')),
      -- The FCM or APNs token, or the Web Push endpoint.
      token text NOT NULL,
      p256dh text,
      auth text,
      app_version text,
      locale text,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT push_devices_token_key UNIQUE (platform, token)
    );
    CREATE INDEX push_devices_user_idx ON push_devices (user_id, created_at);

    CREATE TABLE notification_settings (
      user_id uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
      preview boolean NOT NULL DEFAULT false,
      quiet_start text,
      quiet_end text,
      quiet_time_zone text,
      muted_conversations uuid[] NOT NULL DEFAULT '{}',
      updated_at timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE push_jobs (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      conversation_id uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
      user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
      -- The first message the job is for.
      seq integer NOT NULL,
      run_at timestamptz NOT NULL,
      state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'dead')),
      attempts integer NOT NULL DEFAULT 0,
      locked_by text,
      locked_until timestamptz,
      -- Devices already reached by an attempt that must be retried for others.
      done_devices uuid[] NOT NULL DEFAULT '{}',
      last_error text,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE UNIQUE INDEX push_jobs_pending_key ON push_jobs (conversation_id, user_id) WHERE state = 'pending';
    CREATE INDEX push_jobs_due_idx ON push_jobs (run_at) WHERE state = 'pending';
    CREATE INDEX push_jobs_dead_idx ON push_jobs (updated_at DESC) WHERE state = 'dead';

    -- The last push per conversation and recipient: pushes are coalesced against it.
    CREATE TABLE push_sent (
      conversation_id uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
      user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
      sent_at timestamptz NOT NULL,
      PRIMARY KEY (conversation_id, user_id)
    );

    CREATE FUNCTION append_messages_v3(
      p_ord int[], p_conversation uuid[], p_sender uuid[], p_receiver uuid[], p_content text[],
      p_type text[], p_client_id text[], p_file_url text[], p_file_name text[], p_preview text[],
      p_push_delay_ms int
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
      ), push AS (
        -- The outbox: a recipient with a device gets one pending push job per conversation, due after the
        -- delay; while one waits, later messages are in it (the job counts what is unread when it runs).
        INSERT INTO push_jobs (conversation_id, user_id, seq, run_at)
        SELECT DISTINCT ON (n.conversation_id, n.receiver_id) n.conversation_id, n.receiver_id, n.seq,
               now() + make_interval(secs => p_push_delay_ms / 1000.0)
        FROM numbered n
        WHERE p_push_delay_ms >= 0 AND n.receiver_id IS NOT NULL
          AND EXISTS (SELECT 1 FROM push_devices d WHERE d.user_id = n.receiver_id)
        ORDER BY n.conversation_id, n.receiver_id, n.seq
        ON CONFLICT (conversation_id, user_id) WHERE state = 'pending' DO NOTHING
      )
      SELECT n.ord, n.id, n.seq, floor(extract(epoch FROM now()) * 1000)::float8 FROM numbered n;
    END
    $fn$;

  `
)
