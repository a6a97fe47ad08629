import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

export default Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql`
    -- Tokens issued before this instant no longer sign the user in (set when the password changes).
    ALTER TABLE users ADD COLUMN tokens_valid_after timestamptz;
  `
)
