import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

/**
 * Device sessions: each sign-in is a session with a rotating refresh token, stored only as its SHA-256. The
 * token it replaced is kept (`previous_hash`) to tell a retry of the same refresh (within a short grace) from a
 * stolen token presented after it was rotated (which ends the session). WebSocket tickets: one-time, short-lived
 * credentials for `/ws?ticket=` (hashes too), redeemed by deleting them. Password reset tokens (hashes), used once.
 */
export default Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql`
    CREATE TABLE sessions (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
      device_name text,
      refresh_hash text NOT NULL,
      previous_hash text,
      rotated_at timestamptz,
      created_at timestamptz NOT NULL DEFAULT now(),
      last_used_at timestamptz NOT NULL DEFAULT now(),
      expires_at timestamptz NOT NULL,
      revoked_at timestamptz
    );
    CREATE UNIQUE INDEX sessions_refresh_key ON sessions (refresh_hash);
    CREATE INDEX sessions_previous_idx ON sessions (previous_hash) WHERE previous_hash IS NOT NULL;
    CREATE INDEX sessions_user_idx ON sessions (user_id, created_at) WHERE revoked_at IS NULL;

    CREATE TABLE ws_tickets (
      hash text PRIMARY KEY,
      user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
      session_id uuid REFERENCES sessions (id) ON DELETE CASCADE,
      expires_at timestamptz NOT NULL,
      -- When the access token the ticket was asked with expires: the socket ends then, as with that token.
      token_expires_at timestamptz NOT NULL
    );
    CREATE INDEX ws_tickets_expires_idx ON ws_tickets (expires_at);

    -- Password reset tokens (hashes), one use each.
    CREATE TABLE password_resets (
      hash text PRIMARY KEY,
      user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
      expires_at timestamptz NOT NULL,
      used_at timestamptz,
      created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX password_resets_expires_idx ON password_resets (expires_at);
  `
)
