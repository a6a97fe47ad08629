import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

/**
 * Push notifications: devices, each user's notification settings, and push jobs written by the append itself.
 *
 * `append_messages_v3` calls `append_messages_v2` (0007) and writes the outbox in the same statement: a
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

    -- append_messages_v2 (0007) does the append; this adds the outbox in the same statement. The conversations'
    -- rows are locked by then (inside v2), so an append finding a job pending is ordered against its finish.
    CREATE FUNCTION append_messages_v3(
      p_ord int[], p_conversation uuid[], p_sender uuid[], p_receiver uuid[], p_content text[],
      p_type text[], p_client_id text[], p_file_url text[], p_file_name text[], p_preview text[],
      p_push_delay_ms int
    ) RETURNS TABLE (ord int, id uuid, seq int, created_at float8)
    LANGUAGE plpgsql
    SET plan_cache_mode = force_generic_plan
    AS $fn$
    #variable_conflict use_column
    BEGIN
      RETURN QUERY
      WITH stored AS MATERIALIZED (
        SELECT a.ord, a.id, a.seq, a.created_at FROM append_messages_v2(
          p_ord, p_conversation, p_sender, p_receiver, p_content, p_type, p_client_id, p_file_url, p_file_name, p_preview
        ) a
      ), push AS (
        -- The outbox: a recipient with a device gets one pending push job per conversation, due after the
        -- delay; while one waits, later messages are in it (the job counts what is unread when it runs).
        INSERT INTO push_jobs (conversation_id, user_id, seq, run_at)
        SELECT DISTINCT ON (i.conversation_id, i.receiver_id) i.conversation_id, i.receiver_id, s.seq,
               now() + make_interval(secs => p_push_delay_ms / 1000.0)
        FROM stored s
        JOIN unnest(p_ord, p_conversation, p_receiver) AS i(ord, conversation_id, receiver_id) ON i.ord = s.ord
        WHERE p_push_delay_ms >= 0 AND i.receiver_id IS NOT NULL
          AND EXISTS (SELECT 1 FROM push_devices d WHERE d.user_id = i.receiver_id)
        ORDER BY i.conversation_id, i.receiver_id, s.seq
        ON CONFLICT (conversation_id, user_id) WHERE state = 'pending' DO NOTHING
      )
      SELECT s.ord, s.id, s.seq, s.created_at FROM stored s;
    END
    $fn$;
  `
)
