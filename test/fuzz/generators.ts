/**
 * Generators shared by the fuzz suites. Values are JSON *text*, not JS values: a body can then hold what
 * `JSON.stringify` cannot write (5,000 levels of nesting built by concatenation, `2^53 + 1` exactly,
 * `-0`, `1e309`, duplicate keys, an own `__proto__` key) and is sent byte for byte as generated.
 */
import fc from "fast-check"

/** Planted in generated strings: an error message or error body that contains it echoes a received value. */
export const marker = "ZZMARKERZZ"

const envInt = (name: string): number | undefined => {
  const text = process.env[name]
  if (text === undefined || text.trim() === "") return undefined
  const value = Number(text)
  return Number.isSafeInteger(value) ? value : undefined
}

/** One seed for a whole file, so that one `FUZZ_SEED` replays every property of it. */
export const seed = envInt("FUZZ_SEED") ?? Math.floor(Math.random() * 0x7fffffff)
const runs = envInt("FUZZ_RUNS")

/**
 * `FUZZ_SEED` replays a run (default: random, printed when a property fails, with the path of the
 * counterexample); `FUZZ_RUNS` replaces each property's default number of runs and lifts its time budget
 * (which keeps CI short: the property stops after `budgetMs`, shrinking included, and passes if nothing
 * failed by then; a failure found is reported as far as it was shrunk).
 */
export const parameters = (defaultRuns: number, budgetMs: number): fc.Parameters<unknown> => ({
  seed,
  numRuns: runs ?? defaultRuns,
  ...(runs === undefined ? { interruptAfterTimeLimit: budgetMs, markInterruptAsFailure: false } : {}),
  reporter: (details) => {
    if (!details.failed) return
    // The default report, what went wrong, and how to replay it.
    const error = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance)
    throw new Error(`${fc.defaultReportMessage(details)}\n${error}\nReplay with FUZZ_SEED=${seed}`)
  }
})

/** A property's test timeout: its budget and room to shrink a failure (and restart the server) in CI, long with FUZZ_RUNS. */
export const testTimeout = (budgetMs: number) => runs === undefined ? budgetMs + 45_000 : 3_600_000

/**
 * With `FUZZ_EXPLORE=1` no property fails: every problem is counted by kind and `explored()` lists them,
 * to see past a first known failure.
 */
export const exploring = process.env.FUZZ_EXPLORE === "1"
const found = new Map<string, { count: number; example: string }>()

/** Fails the property with `problems` (or, exploring, records them). */
export const verdict = (problems: ReadonlyArray<string>) => {
  if (!exploring) {
    if (problems.length > 0) throw new Error(problems.join("\n"))
    return
  }
  for (const problem of problems) {
    // "kind — detail": counted by kind and, for frames and requests, by the event or route named first.
    const [kind = problem, detail = ""] = problem.split(" — ", 2)
    const where = /"event":"(\w+)"|^(?:GET|POST|PUT|PATCH|DELETE) \S+/.exec(detail)
    const place = where === null ? "" : (where[1] ?? where[0].replace(/[0-9a-f]{8}-[0-9a-f-]{27}/gi, "{id}").split(/[?%]/, 1)[0])
    const key = `${kind}${place === "" ? "" : ` (${place})`}`
    const seen = found.get(key)
    if (seen === undefined) found.set(key, { count: 1, example: problem.slice(0, 3000) })
    else seen.count++
  }
}

export const explored = () =>
  [...found].map(([kind, { count, example }]) => `### ${kind} (${count}x)\n${example}`).join("\n\n")

// ---- JSON text --------------------------------------------------------------------------------

/** A JSON object as entries of key and value text, so a body can be mutated one field at a time. */
export type Entries = ReadonlyArray<readonly [key: string, value: string]>

export const text = (s: string) => JSON.stringify(s)

/** How deep arrays and objects nest in JSON text (strings skipped). */
export const nestingOf = (json: string) => {
  let depth = 0
  let max = 0
  let inString = false
  for (let i = 0; i < json.length; i++) {
    const c = json[i]
    if (inString) {
      if (c === "\\") i++
      else if (c === "\"") inString = false
    } else if (c === "\"") inString = true
    else if (c === "[" || c === "{") max = Math.max(max, ++depth)
    else if (c === "]" || c === "}") depth--
  }
  return max
}

/** " (deep nesting)" when the text nests past 64 levels: the known crash, told apart from the rest. */
export const deepTag = (json: string | undefined) => json !== undefined && nestingOf(json) > 64 ? " (deep nesting)" : ""

export const objectText = (entries: Entries) =>
  `{${entries.map(([key, value]) => `${JSON.stringify(key)}:${value}`).join(",")}}`

/** Nesting built by concatenation: `[[[…]]]` or `{"a":{"a":…}}` (2 or 6 bytes a level), up to `max` levels. */
export const deepNesting = (max = 5000): fc.Arbitrary<string> =>
  fc.tuple(fc.constantFrom(64, 65, 100, 1000, 3000, max), fc.constantFrom("array", "object", "mixed")).map(
    ([levels, kind]) => {
      if (kind === "array") return "[".repeat(levels) + "]".repeat(levels)
      // Objects cost more bytes a level: keep them under a frame's 16 KiB.
      const n = Math.min(levels, 2500)
      if (kind === "object") return "{\"a\":".repeat(n) + "1" + "}".repeat(n)
      return "[{\"a\":".repeat(Math.floor(n / 2)) + "0" + "}]".repeat(Math.floor(n / 2))
    }
  )

/** Numbers a decoder must bound or refuse: int4 and safe-integer edges, overflow, -0, fractions. */
export const hugeNumber: fc.Arbitrary<string> = fc.constantFrom(
  "2147483647",
  "2147483648",
  "-2147483649",
  "4294967296",
  "9007199254740991",
  "9007199254740993",
  "123456789012345678901234567890",
  "1e308",
  "1e309",
  "-1e309",
  "1e-400",
  "-0",
  "-1",
  "0.5",
  "1.0",
  "1E2"
)

/** The same as strings, for query parameters and fields that decode numbers from text. */
export const numericString: fc.Arbitrary<string> = fc.constantFrom(
  "NaN",
  "Infinity",
  "-Infinity",
  "2147483648",
  "9007199254740993",
  "1e308",
  "1e309",
  "-0",
  "0x10",
  "1_000",
  " 1",
  "1 ",
  "01",
  "+1",
  "",
  "1.5",
  "-1"
)

/** Strings that trip encoders: lone and reversed surrogates, NUL, BOM, bidi controls, combining marks. */
const oddPieces = [
  "\ud800",
  "\udfff",
  "\udc00\ud800",
  "a\ud83d",
  "\u0000",
  "a\u0000b",
  "\ufeff",
  "\u202e",
  "\u200b",
  "\u00a0",
  "e\u0301\u0301\u0301",
  "😀",
  "\u2028\u2029",
  "\r\n\t",
  "'\"\\",
  "<script>",
  "${x}",
  "%00",
  "%s%n"
] as const

/** A string that always carries the marker, with odd pieces around it. */
export const markedString: fc.Arbitrary<string> = fc
  .tuple(fc.array(fc.constantFrom(...oddPieces), { maxLength: 3 }), fc.string({ maxLength: 8 }))
  .map(([pieces, tail]) => `${pieces.join("")}${marker}${tail}`)

/** Very long strings, bounded so a frame stays under 16 KiB and a run stays fast. */
export const longString: fc.Arbitrary<string> = fc
  .constantFrom(65, 257, 501, 1001, 2049, 4001, 10_000)
  .map((n) => (marker + "x".repeat(n)).slice(0, n))

export const oddString: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: markedString },
  { weight: 2, arbitrary: fc.constantFrom(...oddPieces) },
  { weight: 1, arbitrary: fc.constantFrom("", " ", "   \t\n") },
  { weight: 1, arbitrary: longString },
  { weight: 1, arbitrary: fc.string({ unit: "grapheme", maxLength: 20 }) },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 20 }).map((s) => s + marker) }
)

/** Keys that reach prototypes when copied carelessly. */
export const prototypeKey: fc.Arbitrary<string> = fc.constantFrom(
  "__proto__",
  "constructor",
  "prototype",
  "toString",
  "hasOwnProperty",
  "valueOf"
)

/** Any small JSON text, with odd leaves. */
export const anyJson: fc.Arbitrary<string> = fc.letrec<{ value: string }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constantFrom("null", "true", "false", "0", "[]", "{}"),
    hugeNumber,
    oddString.map(text),
    fc.array(tie("value"), { maxLength: 3 }).map((items) => `[${items.join(",")}]`),
    fc.array(fc.tuple(fc.oneof(fc.string({ maxLength: 5 }), prototypeKey), tie("value")), { maxLength: 3 }).map(objectText)
  )
})).value

/** A value of a wrong type (or shape) for any field. */
export const wrongType: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom("null", "true", "false", "0", "1", "-1", "[]", "{}", "\"\"", "[\"a\"]", "{\"a\":1}"),
  fc.constantFrom(`{"__proto__":{"polluted":"${marker}"}}`, `{"constructor":{"prototype":{"polluted":1}}}`),
  hugeNumber,
  oddString.map(text),
  numericString.map(text)
)

/** What replaces one field's value in a mutation. */
export const badValue: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: wrongType },
  { weight: 1, arbitrary: deepNesting() },
  { weight: 1, arbitrary: anyJson }
)

/** Uuids that look right: `known` ones (the caller's own, other users'), fresh ones, odd spellings of them. */
export const uuidLike = (known: fc.Arbitrary<string>): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 4, arbitrary: known },
    { weight: 2, arbitrary: fc.uuid() },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        "00000000-0000-0000-0000-000000000000",
        "ffffffff-ffff-ffff-ffff-ffffffffffff",
        `${marker}-0000-0000-0000-000000000000`
      )
    },
    {
      weight: 1,
      arbitrary: fc.tuple(known, fc.constantFrom("upper", "braces", "short", "trailing")).map(([id, how]) => {
        if (how === "upper") return id.toUpperCase()
        if (how === "braces") return `{${id}}`
        if (how === "short") return id.slice(0, 35)
        return `${id}${marker}`
      })
    }
  )

// ---- mutations of a valid body ----------------------------------------------------------------

/**
 * Starts from valid entries and changes one thing: a field's value, a missing field, an extra or
 * prototype key, a duplicate key, or the whole body of another type or deeply nested.
 */
export const mutate = (valid: Entries): fc.Arbitrary<string> => {
  const keys = valid.map(([key]) => key)
  const withField = keys.length > 0
    ? [
      fc.tuple(fc.constantFrom(...keys), badValue).map(([key, value]) =>
        objectText(valid.map(([k, v]) => (k === key ? [k, value] : [k, v])))
      ),
      fc.constantFrom(...keys).map((key) => objectText(valid.filter(([k]) => k !== key))),
      fc.tuple(fc.constantFrom(...keys), badValue).map(([key, value]) => objectText([...valid, [key, value]]))
    ]
    : []
  return fc.oneof(
    ...withField.map((arbitrary) => ({ weight: 4, arbitrary })),
    {
      weight: 2,
      arbitrary: fc.tuple(fc.oneof(prototypeKey, fc.constantFrom("extra", "", "data", "id")), badValue).map((
        [key, value]
      ) => objectText([...valid, [key, value]]))
    },
    { weight: 1, arbitrary: wrongType },
    { weight: 1, arbitrary: deepNesting().map((nested) => `{"x":${nested}}`) },
    { weight: 1, arbitrary: fc.constant(objectText(valid).slice(0, -1)) }
  )
}

/** A valid body (weight 1) or a mutation of it (weight `mutations`). */
export const validOrMutated = (valid: fc.Arbitrary<Entries>, mutations = 4): fc.Arbitrary<string> =>
  valid.chain((entries) =>
    fc.oneof(
      { weight: 1, arbitrary: fc.constant(objectText(entries)) },
      { weight: mutations, arbitrary: mutate(entries) }
    )
  )

/** Noise: not JSON, or JSON of the wrong kind entirely. */
export const noise: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom("", " ", "{", "}", "[", "null", "NaN", "undefined", "{'a':1}", "{\"a\":1,}", "\u0000", "\ufeff{}"),
  fc.string({ maxLength: 40 }),
  deepNesting(),
  anyJson
)
