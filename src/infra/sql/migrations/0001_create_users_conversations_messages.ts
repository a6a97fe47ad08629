import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

export default Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql`
    CREATE TYPE user_role AS ENUM ('user', 'trainer', 'admin');
    CREATE TYPE conversation_status AS ENUM ('active', 'archived', 'closed');
    CREATE TYPE message_type AS ENUM ('text', 'image', 'file', 'system');

    CREATE TABLE users (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      email text NOT NULL CONSTRAINT users_email_key UNIQUE,
      password_hash text NOT NULL,
      first_name text NOT NULL,
      last_name text NOT NULL,
      role user_role NOT NULL DEFAULT 'user',
      avatar text,
      is_active boolean NOT NULL DEFAULT true,
      assigned_trainer_id uuid REFERENCES users (id) ON DELETE SET NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX users_created_idx ON users (created_at, id);
    CREATE INDEX users_role_created_idx ON users (role, created_at, id);
    CREATE INDEX users_assigned_trainer_idx ON users (assigned_trainer_id, created_at, id)
      WHERE assigned_trainer_id IS NOT NULL;

    CREATE TABLE conversations (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      user_id uuid NOT NULL REFERENCES users (id),
      trainer_id uuid NOT NULL REFERENCES users (id),
      status conversation_status NOT NULL DEFAULT 'active',
      last_seq integer NOT NULL DEFAULT 0,
      last_message_at timestamptz,
      last_message_preview text,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT conversations_pair_key UNIQUE (user_id, trainer_id)
    );
    CREATE INDEX conversations_trainer_recent_idx ON conversations (trainer_id, last_message_at DESC NULLS LAST);
    CREATE INDEX conversations_user_recent_idx ON conversations (user_id, last_message_at DESC NULLS LAST);

    CREATE TABLE messages (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      conversation_id uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
      seq integer NOT NULL,
      sender_id uuid NOT NULL REFERENCES users (id),
      receiver_id uuid NOT NULL REFERENCES users (id),
      content text NOT NULL,
      type message_type NOT NULL DEFAULT 'text',
      is_read boolean NOT NULL DEFAULT false,
      read_at timestamptz,
      file_url text,
      file_name text,
      client_message_id text,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT messages_conversation_seq_key UNIQUE (conversation_id, seq),
      CONSTRAINT messages_sender_client_id_key UNIQUE (sender_id, client_message_id)
    );
    CREATE INDEX messages_receiver_unread_idx ON messages (receiver_id, conversation_id) WHERE NOT is_read;
  `
)
