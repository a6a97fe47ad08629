/**
 * Fuzzing the REST door: every operation of the running server's own /api/openapi.json (so a new route
 * is covered without touching this file) gets valid-looking and mutated path parameters, queries and
 * bodies, signed in as a user, a trainer, an admin, nobody or with a bad token, against the server in a
 * child process. Asserted: no 5xx but 503, no error body carries a received value, and after each batch
 * the process lives, /health answers and an open WebSocket still gets replies. Rejected input changes
 * nothing. `FUZZ_SEED` replays a run, `FUZZ_RUNS` runs longer.
 */
import fc from "fast-check"
import { afterAll, beforeAll, describe, it } from "vitest"
import { pair, type Pair, send } from "../support/Chat.js"
import { FuzzSocket, type FuzzTarget, startFuzzTarget } from "../support/FuzzTarget.js"
import { type SignedIn, signIn, signInAdmin } from "../support/Users.js"
import {
  anyJson,
  deepNesting,
  deepTag,
  type Entries,
  exploring,
  explored,
  testTimeout,
  hugeNumber,
  longString,
  marker,
  markedString,
  noise,
  numericString,
  objectText,
  oddString,
  parameters,
  prototypeKey,
  text,
  uuidLike,
  validOrMutated,
  verdict,
  wrongType
} from "./generators.js"

// ---- the operations, from the OpenAPI document ------------------------------------------------

type JsonSchema = { readonly [key: string]: unknown }

interface Parameter {
  readonly name: string
  readonly schema: JsonSchema
  readonly required: boolean
}

interface Operation {
  readonly method: string
  /** With `{name}` for path parameters. */
  readonly path: string
  readonly pathParams: ReadonlyArray<string>
  readonly query: ReadonlyArray<Parameter>
  readonly body: { readonly mediaType: string; readonly schema: JsonSchema } | undefined
  readonly secured: boolean
}

const isSchema = (u: unknown): u is JsonSchema => typeof u === "object" && u !== null && !Array.isArray(u)

const operationsOf = (document: JsonSchema): ReadonlyArray<Operation> => {
  const components = isSchema(document.components) && isSchema(document.components.schemas) ? document.components.schemas : {}
  const resolve = (schema: unknown, depth = 0): JsonSchema => {
    if (!isSchema(schema) || depth > 20) return {}
    if (typeof schema.$ref === "string") {
      const { $ref, ...rest } = schema
      return { ...resolve(components[$ref.split("/").pop() ?? ""], depth + 1), ...rest }
    }
    const out: Record<string, unknown> = {}
    for (const [key, value] of Object.entries(schema)) {
      if (key === "properties" && isSchema(value)) {
        out[key] = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolve(v, depth + 1)]))
      } else if ((key === "anyOf" || key === "oneOf" || key === "allOf") && Array.isArray(value)) {
        out[key] = value.map((v) => resolve(v, depth + 1))
      } else if (key === "items") out[key] = resolve(value, depth + 1)
      else out[key] = value
    }
    return out
  }
  const operations: Array<Operation> = []
  const paths = isSchema(document.paths) ? document.paths : {}
  for (const [path, item] of Object.entries(paths)) {
    if (!isSchema(item)) continue
    for (const [method, operation] of Object.entries(item)) {
      if (!isSchema(operation) || !["get", "post", "put", "patch", "delete"].includes(method)) continue
      const parameters = Array.isArray(operation.parameters) ? operation.parameters.filter(isSchema) : []
      const content = isSchema(operation.requestBody) && isSchema(operation.requestBody.content)
        ? Object.entries(operation.requestBody.content)[0]
        : undefined
      operations.push({
        method: method.toUpperCase(),
        path,
        pathParams: parameters.filter((p) => p.in === "path").map((p) => String(p.name)),
        query: parameters.filter((p) => p.in === "query").map((p) => ({
          name: String(p.name),
          schema: resolve(p.schema),
          required: p.required === true
        })),
        body: content === undefined ? undefined : {
          mediaType: content[0],
          schema: resolve(isSchema(content[1]) ? content[1].schema : {})
        },
        secured: Array.isArray(operation.security) && operation.security.length > 0
      })
    }
  }
  return operations
}

// ---- state ------------------------------------------------------------------------------------

let target: FuzzTarget
let operations: ReadonlyArray<Operation>
let fuzz: Pair
let other: Pair
let quiet: Pair
let sentinel: Pair
let boss: SignedIn
let ids: Array<string>
let watcher: FuzzSocket
let emails = 0

beforeAll(async () => {
  target = await startFuzzTarget({}, marker)
  ;[fuzz, other, quiet, sentinel] = await Promise.all([target.run(pair), target.run(pair), target.run(pair), target.run(pair)])
  boss = await target.run(signInAdmin)
  const sent = await Promise.all([
    target.run(send(fuzz.user.token, fuzz.conversationId, "from the user")),
    target.run(send(fuzz.trainer.token, fuzz.conversationId, "from the trainer")),
    target.run(send(other.user.token, other.conversationId, "someone else's"))
  ])
  ids = [
    fuzz.conversationId,
    other.conversationId,
    fuzz.user.id,
    fuzz.trainer.id,
    other.user.id,
    other.trainer.id,
    ...sent.map((reply) => String(reply.body.id))
  ]
  const document: unknown = await fetch(`${target.url()}/api/openapi.json`).then((r) => r.json())
  if (!isSchema(document)) throw new Error("no OpenAPI document")
  operations = operationsOf(document)
  if (operations.length < 20) throw new Error(`only ${operations.length} operations in the OpenAPI document`)
  watcher = await FuzzSocket.open(target.url(), sentinel.user.token)
}, 150_000)

afterAll(async () => {
  watcher?.terminate()
  await target?.close()
})

/** One of the known ids as they are when generated (the fuzzed conversation is replaced once closed). */
const knownId = () =>
  fc.oneof(
    // Mostly the fuzzed conversation, where the fuzzed accounts can do the most.
    { weight: 1, arbitrary: fc.constant(null).map(() => ids[0]!) },
    { weight: 1, arbitrary: fc.nat({ max: ids.length - 1 }).map((i) => ids[i] ?? ids[0]!) }
  )

// ---- values from schemas ----------------------------------------------------------------------

/** A valid-looking value (JSON text) for a schema, helped by the field's name where the schema says little. */
const valueFor = (schema: JsonSchema, name: string, depth = 0): fc.Arbitrary<string> => {
  const variants = Array.isArray(schema.anyOf) ? schema.anyOf : Array.isArray(schema.oneOf) ? schema.oneOf : undefined
  if (variants !== undefined && variants.length > 0) {
    return fc.oneof(...variants.filter(isSchema).map((v) => valueFor(v, name, depth + 1)))
  }
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return fc.constantFrom(...schema.enum.map((v) => JSON.stringify(v)))
  switch (schema.type) {
    case "null":
      return fc.constant("null")
    case "boolean":
      return fc.boolean().map(String)
    case "integer":
    case "number": {
      const min = typeof schema.minimum === "number" ? schema.minimum : 0
      const max = typeof schema.maximum === "number" ? schema.maximum : undefined
      const small = fc.integer({ min, max: Math.min(max ?? min + 100, min + 1000) }).map(String)
      // Without a declared maximum, the edges of int4 and of safe integers are valid too.
      const edges = fc.constantFrom("2147483647", "2147483648", "9007199254740991")
      return max !== undefined ? small : fc.oneof(small, edges)
    }
    case "array":
      return depth > 3 ? fc.constant("[]") : fc.array(valueFor(isSchema(schema.items) ? schema.items : {}, name, depth + 1), {
        minLength: typeof schema.minItems === "number" ? schema.minItems : 0,
        maxLength: 2
      }).map((items) => `[${items.join(",")}]`)
    case "object":
      return depth > 3 ? fc.constant("{}") : entriesFor(schema, depth + 1).map(objectText)
    default:
      return stringFor(schema, name).map(text)
  }
}

const stringFor = (schema: JsonSchema, name: string): fc.Arbitrary<string> => {
  const key = name.toLowerCase()
  if (schema.format === "uuid" || key.endsWith("id")) return fc.oneof(knownId(), fc.uuid())
  if (key.includes("email")) return fc.constant(null).map(() => `fuzz-${++emails}-${Date.now()}@test.local`)
  // A wrong current password: the fuzzed accounts keep theirs, and the refusal must not echo it.
  if (key === "currentpassword") return fc.constant(`${marker}-wrong`)
  if (key.includes("password")) return fc.constant("password-123")
  if (key.includes("avatar") || key.includes("url")) return fc.constant(`https://example.com/${marker}.png`)
  const maxLength = typeof schema.maxLength === "number" ? schema.maxLength : 200
  return markedString.map((s) => `name ${s}`.slice(0, maxLength))
}

const entriesFor = (schema: JsonSchema, depth = 0): fc.Arbitrary<Entries> => {
  const properties = isSchema(schema.properties) ? Object.entries(schema.properties) : []
  const required = new Set(Array.isArray(schema.required) ? schema.required.map(String) : [])
  return fc.tuple(
    ...properties.map(([key, value]) =>
      fc.tuple(
        fc.constant(key),
        valueFor(isSchema(value) ? value : {}, key, depth),
        required.has(key) ? fc.constant(true) : fc.oneof({ weight: 2, arbitrary: fc.constant(true) }, fc.constant(false))
      )
    )
  ).map((fields) => fields.filter(([, , present]) => present).map(([key, value]) => [key, value] as const))
}

/** A body's valid-looking entries, choosing one variant of a union. */
const bodyEntries = (schema: JsonSchema): fc.Arbitrary<Entries> => {
  const variants = Array.isArray(schema.anyOf) ? schema.anyOf : Array.isArray(schema.oneOf) ? schema.oneOf : undefined
  if (variants !== undefined && variants.length > 0) return fc.oneof(...variants.filter(isSchema).map((v) => entriesFor(v)))
  return entriesFor(schema)
}

// ---- requests ---------------------------------------------------------------------------------

interface Request {
  readonly method: string
  readonly path: string
  readonly as: "user" | "trainer" | "admin" | "nobody" | "bad token"
  readonly contentType: string | undefined
  readonly body: string | undefined
}

/** Percent-encodes the UTF-8 of a string; a lone surrogate goes as U+FFFD (as any client would send it). */
const encode = (s: string) =>
  Array.from(Buffer.from(s, "utf8"), (byte) =>
    /[\w.~-]/.test(String.fromCharCode(byte)) ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`
  ).join("")

const pathValue = (): fc.Arbitrary<string> => fc.oneof(
  { weight: 6, arbitrary: uuidLike(knownId()).map(encode) },
  { weight: 2, arbitrary: fc.oneof(markedString, numericString, longString.map((s) => s.slice(0, 3000)), prototypeKey).map(encode) },
  { weight: 1, arbitrary: fc.constantFrom("..", "%2e%2e", "%2F", "%00", "%", "%zz", "me", "trainers", "unread", "") }
)

const queryValue = (parameter: Parameter): fc.Arbitrary<string> => {
  const valid = Array.isArray(parameter.schema.enum) && parameter.schema.enum.length > 0
    ? fc.constantFrom(...parameter.schema.enum.map(String))
    : parameter.schema.format === "uuid" || parameter.name.toLowerCase().endsWith("id")
    ? fc.oneof(knownId(), fc.uuid())
    : fc.oneof(fc.nat(120).map(String), markedString.map((s) => `name ${s}`))
  return fc.oneof({ weight: 3, arbitrary: valid }, { weight: 2, arbitrary: numericString }, { weight: 1, arbitrary: oddString })
}

const queryFor = (operation: Operation): fc.Arbitrary<string> =>
  fc.tuple(
    ...operation.query.map((parameter) =>
      fc.option(
        fc.tuple(queryValue(parameter), fc.boolean()).map(([value, twice]) =>
          `${encode(parameter.name)}=${encode(value)}` + (twice ? `&${encode(parameter.name)}=${encode(value)}` : "")
        ),
        { nil: undefined, freq: 2 }
      )
    ),
    // Odd keys, but no marker in them: an error may name an unexpected field.
    fc.option(
      fc.tuple(fc.oneof(prototypeKey, fc.constantFrom("extra", "", "a\u0000", "\ud800", "x".repeat(300))), wrongType)
        .map(([k, v]) => `${encode(k)}=${encode(v)}`),
      { nil: undefined, freq: 4 }
    )
  ).map((pieces) => {
    const present = pieces.filter((p) => p !== undefined)
    return present.length === 0 ? "" : `?${present.join("&")}`
  })

/** A multipart upload: a small file (maybe a real PNG), or broken multipart. */
const multipart: fc.Arbitrary<{ readonly contentType: string; readonly body: string }> = fc.oneof(
  fc.tuple(fc.constantFrom("file", "files", "", "__proto__"), fc.oneof(markedString, fc.constant("a.txt")), fc.constantFrom(
    "text/plain",
    "image/png",
    "application/octet-stream",
    ""
  ), markedString).map(([field, name, type, content]) => ({
    contentType: "multipart/form-data; boundary=FUZZ",
    body: `--FUZZ\r\nContent-Disposition: form-data; name="${field}"; filename="${name}"\r\n` +
      (type === "" ? "" : `Content-Type: ${type}\r\n`) + `\r\n${content}\r\n--FUZZ--\r\n`
  })),
  fc.tuple(fc.constantFrom("multipart/form-data; boundary=FUZZ", "multipart/form-data", "multipart/form-data; boundary="), noise).map((
    [contentType, body]
  ) => ({ contentType, body }))
)

const requestFor = (operation: Operation): fc.Arbitrary<Request> => {
  const path = fc.tuple(...operation.pathParams.map(() => pathValue())).map((values) => {
    let i = 0
    return operation.path.replace(/\{[^}]+\}/g, () => values[i++] ?? "")
  })
  const as: fc.Arbitrary<Request["as"]> = operation.secured
    ? fc.constantFrom("user", "user", "user", "trainer", "admin", "admin", "nobody", "bad token")
    : fc.constant("nobody")
  const jsonBody: fc.Arbitrary<{ readonly contentType: string | undefined; readonly body: string | undefined }> =
    operation.body === undefined
      ? fc.oneof(
        { weight: 4, arbitrary: fc.constant({ contentType: undefined, body: undefined }) },
        { weight: 1, arbitrary: anyJson.map((body) => ({ contentType: "application/json", body })) }
      )
      : operation.body.mediaType.startsWith("multipart/")
      ? multipart
      : fc.tuple(
        fc.oneof(
          { weight: 8, arbitrary: validOrMutated(bodyEntries(operation.body.schema)) },
          { weight: 1, arbitrary: noise },
          { weight: 1, arbitrary: deepNesting() }
        ),
        fc.constantFrom<string | undefined>(
          "application/json",
          "application/json",
          "application/json",
          "application/json; charset=utf-8",
          "text/plain",
          undefined
        )
      ).map(([body, contentType]) => ({ contentType, body }))
  return fc.tuple(path, queryFor(operation), as, jsonBody).map(([p, query, who, { body, contentType }]) => ({
    method: operation.method,
    path: p + query,
    as: who,
    contentType,
    body
  }))
}

const requests = (): fc.Arbitrary<Request> => fc.constantFrom(...operations).chain(requestFor)

/** A request a client could send: the shapes of the document, the callers' own ids, no mutation. */
const clientRequestFor = (operation: Operation): fc.Arbitrary<Request> => {
  const ownId = fc.oneof({ weight: 2, arbitrary: fc.constant(null).map(() => ids[0]!) }, { weight: 1, arbitrary: knownId() })
  const path = fc.tuple(...operation.pathParams.map(() => ownId)).map((values) => {
    let i = 0
    return operation.path.replace(/\{[^}]+\}/g, () => values[i++] ?? "")
  })
  const query = fc.tuple(
    ...operation.query.map((parameter) =>
      fc.option(
        fc.tuple(queryValue(parameter), fc.boolean()).map(([value]) => `${encode(parameter.name)}=${encode(value)}`),
        { nil: undefined }
      )
    )
  ).map((pieces) => (pieces.some((p) => p !== undefined) ? `?${pieces.filter((p) => p !== undefined).join("&")}` : ""))
  const as: fc.Arbitrary<Request["as"]> = !operation.secured
    ? fc.constant("nobody")
    : operation.path.includes("/admin")
    ? fc.constant("admin")
    : fc.constantFrom("user", "trainer", "admin")
  const body: fc.Arbitrary<{ readonly contentType: string | undefined; readonly body: string | undefined }> =
    operation.body === undefined
      ? fc.constant({ contentType: undefined, body: undefined })
      : operation.body.mediaType.startsWith("multipart/")
      ? multipart
      : bodyEntries(operation.body.schema).map((entries) => ({ contentType: "application/json", body: objectText(entries) }))
  return fc.tuple(path, query, as, body).map(([p, q, who, b]) => ({ method: operation.method, path: p + q, as: who, ...b }))
}

/** One client-shaped request for every operation of the document. */
const clientRequests = (): fc.Arbitrary<ReadonlyArray<Request>> => fc.tuple(...operations.map(clientRequestFor))

// ---- sending and checking ---------------------------------------------------------------------

const tokenOf = (as: Request["as"]) => {
  switch (as) {
    case "user":
      return `Bearer ${fuzz.user.token}`
    case "trainer":
      return `Bearer ${fuzz.trainer.token}`
    case "admin":
      return `Bearer ${boss.token}`
    case "bad token":
      return `Bearer ${marker}.${marker}.${marker}`
    case "nobody":
      return undefined
  }
}

const shown = (request: Request) => {
  const body = request.body === undefined
    ? ""
    : ` ${request.body.length <= 300 ? request.body : `${request.body.slice(0, 300)}… (${request.body.length} chars)`}`
  return `${request.method} ${request.path.length <= 300 ? request.path : `${request.path.slice(0, 300)}…`} as ${request.as}` +
    (request.contentType === undefined ? "" : ` [${request.contentType}]`) + body
}

/** Sends one request; returns what is wrong with its answer. */
const check = async (request: Request): Promise<Array<string>> => {
  const headers: Record<string, string> = {}
  const token = tokenOf(request.as)
  if (token !== undefined) headers.authorization = token
  if (request.contentType !== undefined) headers["content-type"] = request.contentType
  try {
    const response = await fetch(target.url() + request.path, {
      method: request.method,
      headers,
      ...(request.body === undefined || request.method === "GET" ? {} : { body: request.body }),
      signal: AbortSignal.timeout(4_000)
    })
    const body = await response.text()
    const problems: Array<string> = []
    if (response.status >= 500 && response.status !== 503) {
      problems.push(`${response.status}${deepTag(request.body)} — ${shown(request)} → ${body.slice(0, 500)}`)
    }
    if (response.status >= 400 && body.includes(marker)) {
      problems.push(`error body echoes a received value — ${shown(request)} → ${response.status} ${body.slice(0, 500)}`)
    }
    return problems
  } catch (error) {
    return [`no answer — ${shown(request)} → ${String(error)}`]
  }
}

/** Signs the fuzzed accounts in again when a fuzzed request deactivated or signed them out. */
const refresh = async () => {
  for (const who of ["user", "trainer"] as const) {
    const account = fuzz[who]
    const me = await fetch(`${target.url()}/users/me`, { headers: { authorization: `Bearer ${account.token}` } })
    if (me.status === 200) continue
    await fetch(`${target.url()}/users/${account.id}`, {
      method: "PATCH",
      headers: { authorization: `Bearer ${boss.token}`, "content-type": "application/json" },
      body: JSON.stringify({ isActive: true })
    })
    const signedIn = await target.run(signIn(account.email, account.password))
    fuzz = { ...fuzz, [who]: signedIn }
  }
  // An admin may have closed it: a fresh one keeps open-conversation paths (close, send) reachable.
  const conversation = await fetch(`${target.url()}/chat/conversations/${fuzz.conversationId}`, {
    headers: { authorization: `Bearer ${boss.token}` }
  }).then((r) => r.json() as Promise<unknown>)
  if (isSchema(conversation) && conversation.status !== "active") {
    fuzz = await target.run(pair)
    ids.splice(0, 1, fuzz.conversationId)
    ids.splice(2, 2, fuzz.user.id, fuzz.trainer.id)
  }
}

/** Restarts what a failed batch killed, so the next batch starts clean. */
const recover = async () => {
  const restart = async () => {
    await target.restart()
    watcher.terminate()
    watcher = await FuzzSocket.open(target.url(), sentinel.user.token)
  }
  if (target.exited() !== undefined) return restart()
  try {
    if (watcher.closed !== undefined) watcher = await FuzzSocket.open(target.url(), sentinel.user.token)
  } catch {
    await restart()
  }
}

const runBatch = async (batch: ReadonlyArray<Request>) => {
  await recover()
  await refresh()
  const problems: Array<string> = []
  for (const request of batch) {
    const found = await check(request)
    problems.push(...found)
    // A request left hanging is the finding: the rest of the batch would only run the property out of time.
    if (found.some((problem) => problem.startsWith("no answer"))) break
  }
  const health = await fetch(`${target.url()}/health`).then((r) => r.status, (e: unknown) => String(e))
  const probe = await watcher.request("leaveConversation", { conversationId: sentinel.conversationId })
  if (health !== 200 || probe?.event !== "ack") await target.settle(5000)
  const exit = target.exited()
  if (exit !== undefined) {
    const deep = batch.some((request) => deepTag(request.body) !== "") ? " (deep nesting)" : ""
    problems.push(
      `process exited${deep} — code ${exit.code}, signal ${exit.signal}, after one of:\n  ${batch.map(shown).join("\n  ")}` +
        `\nits last output:\n${target.tail(15)}`
    )
    return problems
  }
  if (health !== 200) problems.push(`/health fails — ${health}`)
  if (probe?.event !== "ack") problems.push(`an open socket no longer answers — ${JSON.stringify(probe)}`)
  return problems
}

const snapshot = async () => {
  const auth = { authorization: `Bearer ${quiet.user.token}` }
  const [history, me] = await Promise.all([
    fetch(`${target.url()}/chat/conversations/${quiet.conversationId}/messages?limit=100`, { headers: auth }).then((r) => r.text()),
    fetch(`${target.url()}/users/me`, { headers: auth }).then((r) => r.text())
  ])
  return { history, me }
}

/** Bodies that are certainly invalid for POST /chat/messages and PATCH /users/{id}, sent by the quiet user. */
const invalidRequests = (): fc.Arbitrary<Request> => {
  const send: Entries = [
    ["conversationId", text(quiet.conversationId)],
    ["content", text(`quiet ${marker}`)],
    ["clientMessageId", text("quiet-1")]
  ]
  const update: Entries = [["firstName", text(`quiet ${marker}`)]]
  const json = "application/json"
  const replace = (entries: Entries, key: string, values: fc.Arbitrary<string>) =>
    values.map((value) => objectText([...entries.filter(([k]) => k !== key), [key, value]]))
  // `{}` is a valid (empty) profile update.
  const notAnObject = wrongType.filter((body) => body.trim() !== "{}")
  const notAString = fc.oneof(
    fc.constantFrom("null", "true", "0", "[]", "{}", `{"__proto__":"${marker}"}`),
    hugeNumber,
    deepNesting()
  )
  const extraKey = (entries: Entries) =>
    fc.tuple(fc.oneof(prototypeKey, fc.constantFrom("extra", "role", "isAdmin", "id", "seq")), anyJson).map(([k, v]) =>
      objectText([...entries, [k, v]])
    )
  const sendBody = fc.oneof(
    replace(send, "conversationId", wrongType),
    replace(send, "content", fc.oneof(notAString, fc.constantFrom("\"\"", "\"  \"", `"a\\u0000${marker}"`, text("x".repeat(4001))))),
    replace(send, "clientMessageId", fc.oneof(notAString, fc.constant(text(marker.repeat(7))))),
    replace(send, "type", fc.constantFrom("\"video\"", "1", "null")),
    extraKey(send),
    wrongType
  )
  const updateBody = fc.oneof(
    replace(update, "firstName", fc.oneof(notAString, fc.constantFrom("\"\"", "\"  \""), fc.constant(text("x".repeat(1001))))),
    extraKey(update),
    fc.constant(objectText([...update, ["password", text("short")]])),
    notAnObject
  )
  return fc.oneof(
    sendBody.map((body): Request => ({ method: "POST", path: "/chat/messages", as: "user", contentType: json, body })),
    updateBody.map((body): Request => ({ method: "PATCH", path: `/users/${quiet.user.id}`, as: "user", contentType: json, body }))
  )
}

// ---- properties -------------------------------------------------------------------------------

describe("fuzz: REST operations", () => {
  it("valid-looking and mutated requests to every operation: no 5xx but 503, no echo, the process lives", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(requests(), { minLength: 1, maxLength: 5 }), async (batch) => verdict(await runBatch(batch))),
      parameters(80, 12_000)
    )
  }, testTimeout(12_000))

  it("client-shaped requests to every operation, with edge values: no 5xx but 503, no echo, the process lives", async () => {
    await fc.assert(
      fc.asyncProperty(clientRequests(), async (batch) => verdict(await runBatch(batch))),
      parameters(12, 8_000)
    )
  }, testTimeout(8_000))

  it("certainly invalid sends and profile updates are refused with 4xx and change nothing", async () => {
    const before = await snapshot()
    await fc.assert(
      fc.asyncProperty(fc.array(invalidRequests(), { minLength: 1, maxLength: 4 }), async (batch) => {
        const problems: Array<string> = []
        for (const request of batch) {
          const response = await fetch(target.url() + request.path, {
            method: request.method,
            headers: { authorization: `Bearer ${quiet.user.token}`, "content-type": "application/json" },
            ...(request.body === undefined ? {} : { body: request.body })
          }).then(async (r) => ({ status: r.status, body: await r.text() }), (e: unknown) => ({ status: 0, body: String(e) }))
          if (response.status < 400 || response.status >= 500) {
            const answer = `${response.status} ${response.body.slice(0, 300)}`
            problems.push(`invalid request not refused with 4xx${deepTag(request.body)} — ${shown(request)} → ${answer}`)
          }
        }
        await target.settle(100)
        if (target.exited() !== undefined) {
          problems.push(`process exited — after one of:\n  ${batch.map(shown).join("\n  ")}\n${target.tail(15)}`)
          await recover()
        }
        const after = await snapshot()
        if (after.history !== before.history) {
          problems.push(`rejected requests changed the conversation — ${after.history.slice(0, 300)}`)
        }
        if (after.me !== before.me) problems.push(`rejected requests changed the profile — ${after.me.slice(0, 300)}`)
        verdict(problems)
      }),
      parameters(20, 5_000)
    )
  }, testTimeout(5_000))

  it("no log line carries a received value", () => {
    verdict(target.watched().map((line) => `log line echoes a received value — ${line}`))
    if (exploring) console.log(`Problems found by kind:\n\n${explored()}`)
  })
})
