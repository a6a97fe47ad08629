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

// A UTF-16 code unit of a surrogate pair without its other half.
const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g

/**
 * `String.prototype.toWellFormed`: every lone surrogate replaced by U+FFFD. A JSON string may hold
 * one, UTF-8 cannot: a text column would silently store U+FFFD, a jsonb column refuses the value.
 * Free text is made well formed where it comes in, so that what is answered is what is stored.
 */
export const wellFormed = (s: string): string => s.replace(loneSurrogate, "\uFFFD")

/** A string with its lone surrogates replaced (see `wellFormed`). */
export const WellFormed = Schema.transform(Schema.String, Schema.String, {
  strict: true,
  decode: wellFormed,
  encode: (s) => s
})
