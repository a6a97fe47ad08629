import { Schema, type SchemaAST } from "effect"
import type { HttpRequest } from "./Uws.js"

// How the fast routes read a request as the HttpApp would (src/server/FastRoutes.ts): anything these rules do
// not cover exactly is left to the generic path.

/** A header as the fast routes take it: one value, printable ASCII (anything else goes to the HttpServer). */
const plainHeader = /^[\x20-\x7e]*$/
/** A path segment and a query that URL normalisation and percent-decoding leave exactly as they are. */
export const plainSegment = /^[\w-]+$/
export const plainQuery = /^[\w.=&-]*$/

export interface RequestHeaders {
  readonly authorization: string
  readonly contentType: string
  readonly contentLength: string
  readonly origin: string | undefined
}

const readHeaderNames = new Set(["authorization", "content-type", "content-length", "origin"])

/** The headers these routes read; undefined when one is repeated or unusual (the generic path handles those). */
export const readHeaders = (req: HttpRequest): RequestHeaders | undefined => {
  const found = new Map<string, string>()
  let unusual = false
  req.forEach((key, value) => {
    if (!readHeaderNames.has(key)) return
    unusual ||= found.has(key) || !plainHeader.test(value)
    found.set(key, value.trim())
  })
  return unusual ? undefined : {
    authorization: found.get("authorization") ?? "",
    contentType: found.get("content-type") ?? "",
    contentLength: found.get("content-length") ?? "",
    origin: found.get("origin")
  }
}

/** The query as the HttpApp's router (find-my-way) parses it, for the characters `plainQuery` lets through. */
export const parseQuery = (query: string): Record<string, string | Array<string>> => {
  const params = new Map<string, string | Array<string>>()
  for (const pair of query.split("&")) {
    const eq = pair.indexOf("=")
    if (eq === -1 && pair === "") continue
    const key = eq === -1 ? pair : pair.slice(0, eq)
    const value = eq === -1 ? "" : pair.slice(eq + 1)
    const seen = params.get(key)
    params.set(key, seen === undefined ? value : typeof seen === "string" ? [seen, value] : [...seen, value])
  }
  return Object.fromEntries(params)
}

// `normalizeUrlParams` of HttpApiBuilder (internal there): a lone value for a key that is not a single string
// in the schema becomes an array of one.
const isSingleStringType = (ast: SchemaAST.AST, key?: PropertyKey): boolean => {
  switch (ast._tag) {
    case "StringKeyword":
    case "Literal":
    case "TemplateLiteral":
    case "Enums":
      return true
    case "TypeLiteral": {
      if (key === undefined) return false
      const property = ast.propertySignatures.find((ps) => ps.name === key)
      return property !== undefined
        ? isSingleStringType(property.type, key)
        : ast.indexSignatures.some((is) => Schema.is(Schema.make(is.parameter))(key) && isSingleStringType(is.type))
    }
    case "Union":
      return ast.types.some((type) => isSingleStringType(type, key))
    case "Suspend":
      return isSingleStringType(ast.f(), key)
    case "Refinement":
    case "Transformation":
      return isSingleStringType(ast.from, key)
  }
  return false
}

export const normalizeUrlParams = (params: Record<string, string | Array<string>>, ast: SchemaAST.AST) => {
  const out: Record<string, string | Array<string>> = {}
  for (const key in params) {
    const value = params[key]
    if (value !== undefined) out[key] = Array.isArray(value) || isSingleStringType(ast, key) ? value : [value]
  }
  return out
}

