import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

/**
 * Webhooks: endpoints admins register, and an outbox of events written by triggers in the transaction that
 * caused them, whatever path it came by (a send on any door, a receipt, a moderator's close, a reassignment's
 * archive, a registration, a deactivation). A rolled-back change writes no event; a committed one never misses it.
 *
 * Events of one conversation (or of one user) form a line per webhook, delivered in order: a line is claimed
 * by one instance at a time (a lease) and its jobs go one after the other, oldest first. Job ids give that
 * order: every event of a conversation is written by a statement that holds the conversation's row lock
 * (appends, receipts and status changes all update that row), so ids within a line follow commit order.
 *
 * With no webhook subscribed to an event type, its trigger reads the (small) `webhooks` table and writes nothing.
 * Every function here sets `enable_seqscan = on` and `jit = off`: the append (0005-0007) turns sequential scans
 * off, which the triggers it fires inherit; a scan of `webhooks` then costs 1e10 to the planner, far above
 * `jit_above_cost`, and every append paid 20-80 ms compiling it.
 */
export default Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql`
    CREATE TABLE webhooks (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      url text NOT NULL,
      events text[] NOT NULL,
      description text,
      -- "whsec_" and the base64 key the deliveries are signed with (Standard Webhooks); shown once, at creation.
      secret text NOT NULL,
      created_by uuid REFERENCES users (id) ON DELETE SET NULL,
      created_at timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE webhook_jobs (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      webhook_id uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
      -- The conversation (or, for user events, the user) whose events are delivered in order.
      order_key uuid NOT NULL,
      event_id uuid NOT NULL,
      type text NOT NULL,
      data jsonb NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'dead')),
      attempts integer NOT NULL DEFAULT 0,
      last_error text
    );
    CREATE INDEX webhook_jobs_line_idx ON webhook_jobs (webhook_id, order_key, id) WHERE state = 'pending';

    -- One row per (webhook, order key) with pending jobs: what instances claim, with a lease, and back off on.
    CREATE TABLE webhook_lines (
      webhook_id uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
      order_key uuid NOT NULL,
      run_at timestamptz NOT NULL DEFAULT now(),
      locked_by text,
      locked_until timestamptz,
      PRIMARY KEY (webhook_id, order_key)
    );
    CREATE INDEX webhook_lines_due_idx ON webhook_lines (run_at);

    -- Every attempt, for admins (kept a week).
    CREATE TABLE webhook_deliveries (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      webhook_id uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
      event_id uuid NOT NULL,
      type text NOT NULL,
      attempt integer NOT NULL,
      status integer,
      latency_ms integer NOT NULL,
      error text,
      delivered boolean NOT NULL,
      at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX webhook_deliveries_webhook_idx ON webhook_deliveries (webhook_id, id DESC);
    CREATE INDEX webhook_deliveries_at_idx ON webhook_deliveries (at);

    -- One job per event and subscribed webhook, in the order given, and the lines they join. Lines are locked
    -- (ON CONFLICT DO UPDATE) in key order, so that a runner finishing a line waits for an event being written
    -- to it and sees it before it removes the line.
    CREATE FUNCTION webhook_emit(p_type text, p_keys uuid[], p_data jsonb[]) RETURNS void
    LANGUAGE sql
    SET enable_seqscan = on SET jit = off AS $fn$
      WITH e AS MATERIALIZED (
        SELECT gen_random_uuid() AS event_id, t.k, t.d, t.ord
        FROM unnest(p_keys, p_data) WITH ORDINALITY AS t(k, d, ord)
      ), j AS (
        INSERT INTO webhook_jobs (webhook_id, order_key, event_id, type, data)
        SELECT w.id, e.k, e.event_id, p_type, e.d FROM e CROSS JOIN webhooks w
        WHERE p_type = ANY (w.events)
        ORDER BY e.ord, w.id
        RETURNING webhook_id, order_key
      )
      INSERT INTO webhook_lines AS l (webhook_id, order_key)
      SELECT DISTINCT webhook_id, order_key FROM j ORDER BY 1, 2
      ON CONFLICT (webhook_id, order_key) DO UPDATE SET order_key = l.order_key
    $fn$;

    CREATE FUNCTION webhook_subscribed(p_type text) RETURNS boolean
    LANGUAGE sql STABLE AS $fn$ SELECT EXISTS (SELECT 1 FROM webhooks WHERE p_type = ANY (events)) $fn$;

    -- message.created: once per statement (an append of a whole batch is one), from the rows it inserted.
    CREATE FUNCTION webhook_messages_created() RETURNS trigger
    LANGUAGE plpgsql
    SET enable_seqscan = on SET jit = off AS $fn$
    BEGIN
      IF webhook_subscribed('message.created') THEN
        PERFORM webhook_emit('message.created', array_agg(n.conversation_id ORDER BY n.conversation_id, n.seq),
          array_agg(jsonb_build_object(
            'id', n.id, 'conversationId', n.conversation_id, 'seq', n.seq, 'senderId', n.sender_id,
            'receiverId', n.receiver_id, 'type', n.type, 'content', n.content, 'fileUrl', n.file_url,
            'fileName', n.file_name, 'clientMessageId', n.client_message_id, 'createdAt', n.created_at
          ) ORDER BY n.conversation_id, n.seq))
        FROM new_rows n;
      END IF;
      RETURN NULL;
    END
    $fn$;
    CREATE TRIGGER webhook_messages_created AFTER INSERT ON messages
      REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION webhook_messages_created();

    -- message.read: one event per conversation and reader per statement (a "read up to" is one), with the seqs.
    CREATE FUNCTION webhook_messages_read() RETURNS trigger
    LANGUAGE plpgsql
    SET enable_seqscan = on SET jit = off AS $fn$
    BEGIN
      IF webhook_subscribed('message.read') THEN
        PERFORM webhook_emit('message.read', array_agg(r.conversation_id ORDER BY r.conversation_id, r.reader_id),
          array_agg(jsonb_build_object(
            'conversationId', r.conversation_id, 'readerId', r.reader_id, 'count', r.n, 'seqs', to_jsonb(r.seqs),
            'readAt', r.read_at
          ) ORDER BY r.conversation_id, r.reader_id))
        FROM (
          SELECT n.conversation_id, n.receiver_id AS reader_id, count(*) AS n, array_agg(n.seq ORDER BY n.seq) AS seqs,
                 max(n.read_at) AS read_at
          FROM new_rows n JOIN old_rows o ON o.id = n.id
          WHERE n.is_read AND NOT o.is_read
          GROUP BY n.conversation_id, n.receiver_id
        ) r
        HAVING count(*) > 0;
      END IF;
      RETURN NULL;
    END
    $fn$;
    CREATE TRIGGER webhook_messages_read AFTER UPDATE ON messages
      REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION webhook_messages_read();

    CREATE FUNCTION webhook_conversation_json(c conversations) RETURNS jsonb
    LANGUAGE sql IMMUTABLE AS $fn$
      SELECT jsonb_build_object('id', c.id, 'userId', c.user_id, 'trainerId', c.trainer_id, 'status', c.status,
        'closedReason', c.closed_reason, 'createdAt', c.created_at)
    $fn$;

    -- conversation.created / .closed / .archived: rare, one row at a time.
    CREATE FUNCTION webhook_conversation_event() RETURNS trigger
    LANGUAGE plpgsql
    SET enable_seqscan = on SET jit = off AS $fn$
    DECLARE
      kind text := CASE WHEN TG_OP = 'INSERT' THEN 'conversation.created' ELSE 'conversation.' || NEW.status END;
    BEGIN
      IF webhook_subscribed(kind) THEN
        PERFORM webhook_emit(kind, ARRAY[NEW.id], ARRAY[webhook_conversation_json(NEW)]);
      END IF;
      RETURN NULL;
    END
    $fn$;
    CREATE TRIGGER webhook_conversation_created AFTER INSERT ON conversations
      FOR EACH ROW EXECUTE FUNCTION webhook_conversation_event();
    -- Only a status change to closed or archived (appends update other columns, and never fire this).
    CREATE TRIGGER webhook_conversation_status AFTER UPDATE OF status ON conversations
      FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status AND NEW.status::text IN ('closed', 'archived'))
      EXECUTE FUNCTION webhook_conversation_event();

    -- user.created / user.deactivated (no password hash, ever).
    CREATE FUNCTION webhook_user_event() RETURNS trigger
    LANGUAGE plpgsql
    SET enable_seqscan = on SET jit = off AS $fn$
    DECLARE
      kind text := CASE WHEN TG_OP = 'INSERT' THEN 'user.created' ELSE 'user.deactivated' END;
    BEGIN
      IF webhook_subscribed(kind) THEN
        PERFORM webhook_emit(kind, ARRAY[NEW.id], ARRAY[jsonb_build_object(
          'id', NEW.id, 'email', NEW.email, 'firstName', NEW.first_name, 'lastName', NEW.last_name,
          'role', NEW.role, 'isActive', NEW.is_active, 'assignedTrainerId', NEW.assigned_trainer_id,
          'createdAt', NEW.created_at
        )]);
      END IF;
      RETURN NULL;
    END
    $fn$;
    CREATE TRIGGER webhook_user_created AFTER INSERT ON users FOR EACH ROW EXECUTE FUNCTION webhook_user_event();
    CREATE TRIGGER webhook_user_deactivated AFTER UPDATE OF is_active ON users
      FOR EACH ROW WHEN (OLD.is_active AND NOT NEW.is_active) EXECUTE FUNCTION webhook_user_event();
  `
)
