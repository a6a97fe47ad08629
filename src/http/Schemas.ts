import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect, Schema } from "effect"

/** Request bodies reject unknown fields and report every problem at once, each naming its field. */
export const strict = { parseOptions: { onExcessProperty: "error", errors: "all" } } as const

/** A request body's fields; wrap in `Schema.Class` for a named schema (the options must sit on the struct). */
export const StrictStruct = <Fields extends Schema.Struct.Fields>(fields: Fields) =>
  Schema.Struct(fields).annotations(strict)

export const optional = <S extends Schema.Schema.All>(schema: S) => Schema.optionalWith(schema, { exact: true })

/** An integer query parameter within bounds. */
export const IntFromString = (min: number, max: number) =>
  Schema.NumberFromString.pipe(
    Schema.int(),
    Schema.between(min, max),
    Schema.annotations({ message: () => `must be an integer from ${min} to ${max}` })
  )

/** `limit` (1 to 100, default 20) and `offset` query parameters of every paginated list. */
export const pageParams = {
  limit: Schema.optionalWith(IntFromString(1, 100), { default: () => 20 }),
  offset: Schema.optionalWith(IntFromString(0, 1_000_000), { default: () => 0 })
}

/** One page of a list, as every paginated endpoint answers it. */
export const Page = <S extends Schema.Schema.Any>(identifier: string, item: S) =>
  Schema.Struct({
    items: Schema.Array(item),
    total: Schema.Int,
    limit: Schema.Int,
    offset: Schema.Int
  }).annotations({ identifier })

/**
 * A response with an explicit status, for endpoints whose success status
 * depends on what happened (201 created / 200 found): encoded by the same
 * schema the contract declares for it.
 */
export const withStatus = <A, I>(schema: Schema.Schema<A, I>, status: number) => {
  const encode = HttpServerResponse.schemaJson(schema)
  return (value: A) => Effect.orDie(encode(value, { status }))
}
