/**
 * Bench settings: `BENCH_<NAME>` environment variables (empty means unset) overridden by
 * `--kebab-name=value` or `--kebab-name value` arguments; `--flag` alone means true, `--no-flag` false.
 */

export const kebab = (name: string) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)
export const envName = (name: string) => `BENCH_${name.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`

/** Raw values by camelCase name, for the `known` names: arguments over environment. */
export const readRaw = (
  known: ReadonlyArray<string>,
  argv: ReadonlyArray<string>,
  env: NodeJS.ProcessEnv
): Map<string, string> => {
  const raw = new Map<string, string>()
  for (const name of known) {
    const value = env[envName(name)]
    if (value !== undefined && value !== "") raw.set(name, value)
  }
  const byKebab = new Map(known.map((name) => [kebab(name), name]))
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (!arg.startsWith("--")) throw new Error(`Unexpected argument ${arg} (settings are --name=value)`)
    const [key, inline] = arg.slice(2).split(/=(.*)/s, 2) as [string, string | undefined]
    const negated = inline === undefined && key.startsWith("no-") && byKebab.has(key.slice(3))
    const name = byKebab.get(negated ? key.slice(3) : key)
    if (name === undefined) throw new Error(`Unknown setting --${key}; known: ${[...byKebab.keys()].join(", ")}`)
    if (inline !== undefined) raw.set(name, inline)
    else if (negated) raw.set(name, "false")
    else if (argv[i + 1] !== undefined && !argv[i + 1]!.startsWith("--")) raw.set(name, argv[++i]!)
    else raw.set(name, "true")
  }
  return raw
}

/** `--server-env "A=1 B=2"`: more environment for the server under test. */
export const parseServerEnv = (text: string): Record<string, string> =>
  Object.fromEntries(text.split(/\s+/).filter((s) => s !== "").map((pair) => {
    const at = pair.indexOf("=")
    if (at <= 0) throw new Error(`server-env: expected NAME=value, got ${JSON.stringify(pair)}`)
    return [pair.slice(0, at), pair.slice(at + 1)]
  }))
