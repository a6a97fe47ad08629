/**
 * The OpenAPI document as clients should read it. The generator names components after Effect's own schema
 * identifiers (`Int`, `Trim`, `PropertyKey`, `DateTimeUtc`, a model's `User.json` variant): those are inlined
 * as the plain JSON Schema they stand for, or renamed to the contract's own names.
 */
type Json = Record<string, unknown>

const isObject = (value: unknown): value is Json => typeof value === "object" && value !== null && !Array.isArray(value)

/** Components that are Effect's building blocks: inlined where they are used, as what they mean in JSON. */
const inlined: Readonly<Record<string, Json>> = {
  Int: { type: "integer" },
  Trim: { type: "string" },
  DateTimeUtc: { type: "string", format: "date-time" },
  // A decode issue's path: property names and array indexes.
  PropertyKey: { anyOf: [{ type: "string" }, { type: "integer" }] },
  PersistedFile: { type: "string", format: "binary" }
}

const refPrefix = "#/components/schemas/"

const mapRefs = (value: unknown, f: (name: string) => Json | string): unknown => {
  if (Array.isArray(value)) return value.map((item) => mapRefs(item, f))
  if (!isObject(value)) return value
  const ref = value.$ref
  if (typeof ref === "string" && ref.startsWith(refPrefix)) {
    const replaced = f(ref.slice(refPrefix.length))
    if (typeof replaced !== "string") {
      // Keep what sat beside the $ref (a description, say) over the inlined schema.
      const { $ref: _, ...rest } = value
      return { ...replaced, ...rest }
    }
    return { ...value, $ref: refPrefix + replaced }
  }
  const out: Json = {}
  for (const [key, item] of Object.entries(value)) out[key] = mapRefs(item, f)
  return out
}

export const tidyOpenApi = (spec: Record<string, any>): Record<string, any> => {
  const schemas: Json = isObject(spec.components?.schemas) ? { ...spec.components.schemas } : {}
  const renamed = new Map<string, string>()
  for (const name of Object.keys(schemas)) {
    if (name in inlined) {
      delete schemas[name]
      continue
    }
    // `User.json` → `User`; when `User` is already the same schema, the two become one.
    const dot = name.indexOf(".")
    if (dot > 0) {
      const base = name.slice(0, dot)
      const schema = schemas[name]
      delete schemas[name]
      if (!(base in schemas)) schemas[base] = schema
      else if (JSON.stringify(schemas[base]) !== JSON.stringify(schema)) {
        const fallback = `${base}${name.slice(dot + 1, dot + 2).toUpperCase()}${name.slice(dot + 2)}`
        schemas[fallback] = schema
        renamed.set(name, fallback)
        continue
      }
      renamed.set(name, base)
    }
  }
  const replace = (name: string): Json | string => inlined[name] ?? renamed.get(name) ?? name
  const tidy = mapRefs({ ...spec, components: { ...spec.components, schemas } }, replace)
  return isObject(tidy) ? tidy : spec
}
