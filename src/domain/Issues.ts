import { ParseResult } from "effect"

/**
 * Effect's default decode messages print what was received: `Expected …, actual <value>`, `Unable to decode
 * <value> into a number`. A client's error must name the field and the rule only (the value may be huge, or
 * someone's password pasted in the wrong field): both forms lose the value here.
 */
const actualValue = /, actual [\s\S]*$/
const decodedValue = /Unable to decode [\s\S]* into /

/** A decode message with the received value cut out. */
export const ruleOf = (message: string): string =>
  message.replace(actualValue, "").replace(decodedValue, "Unable to decode the value into ")

export interface Issue {
  readonly _tag: ParseResult.ArrayFormatterIssue["_tag"]
  readonly path: ReadonlyArray<PropertyKey>
  readonly message: string
}

/**
 * Each failure of a decode, by path and rule, with no received value. A key that is not in the schema is
 * named in its path (REST's contract: "foo is unexpected"), unless `unknownKeys` is "hidden" (then the issue is
 * its parent's "has an unknown field").
 */
export const issuesOf = (
  error: ParseResult.ParseError,
  unknownKeys: "named" | "hidden" = "named"
): ReadonlyArray<Issue> =>
  ParseResult.ArrayFormatter.formatErrorSync(error).map((issue) =>
    issue._tag === "Unexpected" && unknownKeys === "hidden"
      ? { _tag: issue._tag, path: issue.path.slice(0, -1), message: "has an unknown field" }
      : { _tag: issue._tag, path: issue.path, message: ruleOf(issue.message) }
  )

/** The issues in one line: `field.sub: rule; other: rule`, at most five and 1,000 characters. */
export const summaryOf = (issues: ReadonlyArray<Issue>): string => {
  const described = issues.slice(0, 5).map((issue) =>
    issue.path.length === 0
      ? issue.message
      : `${issue.path.map((key) => typeof key === "symbol" ? "?" : String(key)).join(".")}: ${issue.message}`
  )
  if (issues.length > described.length) described.push(`and ${issues.length - described.length} more`)
  const text = described.join("; ")
  return text.length > 1000 ? `${text.slice(0, 1000)}…` : text
}
