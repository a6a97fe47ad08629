import { Model } from "@effect/sql"
import { Schema } from "effect"

/** A nullable timestamp: a `Date` to and from the database, an ISO string in JSON. */
export const NullableDateTime = Model.Field({
  select: Schema.NullOr(Model.DateTimeFromDate),
  insert: Schema.NullOr(Model.DateTimeFromDate),
  update: Schema.NullOr(Model.DateTimeFromDate),
  json: Schema.NullOr(Schema.DateTimeUtc),
  jsonCreate: Schema.NullOr(Schema.DateTimeUtc),
  jsonUpdate: Schema.NullOr(Schema.DateTimeUtc)
})
