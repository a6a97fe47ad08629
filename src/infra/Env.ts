import { ConfigProvider, Layer } from "effect"

/**
 * Configuration from the process environment, where a variable set to the
 * empty string counts as not set (compose files and shells produce `X=` for
 * "nothing"): `ADMIN_EMAIL=` must not fail the start, `DATABASE_URL=` must not
 * switch to Postgres.
 */
export const layer = Layer.suspend(() =>
  Layer.setConfigProvider(
    ConfigProvider.fromMap(
      new Map(Object.entries(process.env).filter((entry): entry is [string, string] => (entry[1] ?? "").trim() !== ""))
    )
  )
)
