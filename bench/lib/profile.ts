import * as Fs from "node:fs"

/** A V8 `.cpuprofile` (what `node --cpu-prof` writes). Times are microseconds of the monotonic clock. */
interface CpuProfile {
  readonly nodes: ReadonlyArray<{
    readonly id: number
    readonly callFrame: {
      readonly functionName: string
      readonly url: string
      readonly lineNumber: number
      readonly columnNumber: number
    }
    readonly children?: ReadonlyArray<number>
  }>
  readonly startTime: number
  readonly endTime: number
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

export interface Entry {
  readonly name: string
  readonly ms: number
  readonly share: number
}

export interface ProfileSummary {
  /** Sampled time in the window, ms. */
  readonly totalMs: number
  /** Share of the window the main thread was busy (not idle). */
  readonly busyShare: number
  readonly topSelf: ReadonlyArray<Entry>
  /** Self time by package (node_modules), Node internals, app source, V8 pseudo-frames. */
  readonly selfByArea: ReadonlyArray<Entry>
  /** Time with at least one frame of the module on the stack (modules of interest only). */
  readonly inclusiveByModule: ReadonlyArray<Entry>
  /** Time with a frame matching each of the asked substrings (of "function file:line") on the stack. */
  readonly matched: ReadonlyArray<Entry>
}

export const load = (file: string): CpuProfile => JSON.parse(Fs.readFileSync(file, "utf8")) as CpuProfile

const shortUrl = (url: string) => {
  const nm = url.lastIndexOf("node_modules/")
  if (nm >= 0) return url.slice(nm + "node_modules/".length)
  const src = url.search(/\/(dist\/)?src\//)
  if (src >= 0) return url.slice(src + 1)
  return url.replace(/^file:\/\//, "")
}

/** Package (with an effect module), Node area, app file, or V8 pseudo-frame. */
const areaOf = (functionName: string, url: string): string => {
  if (url === "") {
    if (functionName.startsWith("(")) return functionName // (idle) (program) (garbage collector) (root)
    if (/^(writev|writeBuffer|writeUtf8String|writeLatin1String|writeAsciiString)$/.test(functionName)) {
      return "(native: socket writes, node:net)"
    }
    return "(native: V8 builtins, addons)"
  }
  if (url.startsWith("node:")) {
    const path = url.slice("node:".length).replace(/^internal\//, "")
    return `node:${path.split("/")[0]!.replace(/\.js$/, "").replace(/_.*$/, "")}`
  }
  const nm = url.lastIndexOf("node_modules/")
  if (nm >= 0) {
    const parts = url.slice(nm + "node_modules/".length).split("/")
    const pkg = parts[0]!.startsWith("@") ? `${parts[0]}/${parts[1]}` : parts[0]!
    if (pkg === "effect" || pkg.startsWith("@effect/")) {
      const file = parts.slice(pkg.startsWith("@") ? 2 : 1).join("/")
        .replace(/^dist\/(esm|cjs)\//, "")
        .replace(/\.js$/, "")
      return `${pkg}/${file}`
    }
    return pkg
  }
  const src = url.search(/\/(dist\/)?src\//)
  if (src >= 0) return `app: ${url.slice(src + 1).replace(/^dist\//, "")}`
  return shortUrl(url)
}

/** Coarser than `areaOf`: effect's internals in one, its Schema/ParseResult in another, and so on. */
const groupOf = (area: string): string => {
  if (area.startsWith("effect/")) {
    if (/^effect\/(Schema|ParseResult|SchemaAST|internal\/schema\/)/.test(area)) return "effect Schema (decode/encode)"
    return "effect runtime & data types"
  }
  if (area.startsWith("@effect/platform")) return "@effect/platform (HTTP server, router)"
  if (area.startsWith("@effect/sql")) return "@effect/sql(-pg)"
  return area
}

export const summarize = (
  profile: CpuProfile,
  window: { readonly fromUs: number; readonly toUs: number } | undefined,
  top = 15,
  match: ReadonlyArray<string> = []
): ProfileSummary => {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)

  const self = new Map<number, number>()
  let total = 0
  let idle = 0
  let t = profile.startTime
  const samples = profile.samples
  const deltas = profile.timeDeltas
  const stackCache = new Map<number, ReadonlySet<string>>()
  const inclusive = new Map<string, number>()
  const areaCache = new Map<number, string>()
  const area = (id: number) => {
    let a = areaCache.get(id)
    if (a === undefined) {
      const n = byId.get(id)!
      a = areaOf(n.callFrame.functionName, n.callFrame.url)
      areaCache.set(id, a)
    }
    return a
  }
  const label = (id: number) => {
    const f = byId.get(id)!.callFrame
    return `${f.functionName || "(anonymous)"} ${shortUrl(f.url)}:${f.lineNumber + 1}`
  }
  const matchedCache = new Map<number, ReadonlyArray<string>>()
  const matchesOnStack = (id: number): ReadonlyArray<string> => {
    let found = matchedCache.get(id)
    if (found === undefined) {
      const hits = new Set<string>()
      for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
        const l = label(cur)
        for (const m of match) if (l.includes(m)) hits.add(m)
      }
      found = [...hits]
      matchedCache.set(id, found)
    }
    return found
  }
  const matchedTime = new Map<string, number>(match.map((m) => [m, 0]))
  const groupsOnStack = (id: number): ReadonlySet<string> => {
    let set = stackCache.get(id)
    if (set === undefined) {
      const groups = new Set<string>()
      for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
        const a = area(cur)
        if (!a.startsWith("(")) groups.add(groupOf(a))
      }
      set = groups
      stackCache.set(id, set)
    }
    return set
  }

  for (let i = 0; i < samples.length; i++) {
    t += deltas[i] ?? 0
    // A sample stands for the time until the next one.
    const weight = (deltas[i + 1] ?? 0) / 1000
    if (window !== undefined && (t < window.fromUs || t > window.toUs)) continue
    const id = samples[i]!
    total += weight
    self.set(id, (self.get(id) ?? 0) + weight)
    const name = byId.get(id)?.callFrame.functionName
    if (name === "(idle)") idle += weight
    else {
      for (const g of groupsOnStack(id)) inclusive.set(g, (inclusive.get(g) ?? 0) + weight)
      if (match.length > 0) for (const m of matchesOnStack(id)) matchedTime.set(m, (matchedTime.get(m) ?? 0) + weight)
    }
  }

  const busy = total - idle
  const share = (ms: number) => (busy > 0 ? ms / busy : 0)

  const byFunction = new Map<string, number>()
  const byArea = new Map<string, number>()
  for (const [id, ms] of self) {
    const n = byId.get(id)!
    const f = n.callFrame
    if (f.functionName === "(idle)") continue
    const key = f.url === ""
      ? f.functionName
      : `${f.functionName || "(anonymous)"} ${shortUrl(f.url)}:${f.lineNumber + 1}`
    byFunction.set(key, (byFunction.get(key) ?? 0) + ms)
    const g = groupOf(area(id))
    byArea.set(g, (byArea.get(g) ?? 0) + ms)
  }
  const sorted = (m: Map<string, number>, n: number) =>
    [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, n).map(([name, ms]) => ({ name, ms, share: share(ms) }))

  return {
    totalMs: total,
    busyShare: total > 0 ? busy / total : 0,
    topSelf: sorted(byFunction, top),
    selfByArea: sorted(byArea, 12),
    inclusiveByModule: sorted(inclusive, 12),
    matched: match.map((m) => ({ name: m, ms: matchedTime.get(m) ?? 0, share: share(matchedTime.get(m) ?? 0) }))
  }
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`

export const toMarkdown = (title: string, s: ProfileSummary) => {
  const lines = [
    `#### ${title}`,
    "",
    `Main thread busy ${pct(s.busyShare)} of ${(s.totalMs / 1000).toFixed(1)} s sampled; shares below are of busy time.`,
    "",
    "| self time by area | share |",
    "|---|---:|",
    ...s.selfByArea.map((e) => `| ${e.name} | ${pct(e.share)} |`),
    "",
    "| on the stack (inclusive) | share |",
    "|---|---:|",
    ...s.inclusiveByModule.map((e) => `| ${e.name} | ${pct(e.share)} |`),
    "",
    ...(s.matched.length === 0 ? [] : [
      "| frames matching (inclusive) | share |",
      "|---|---:|",
      ...s.matched.map((e) => `| \`${e.name.replace(/\|/g, "\\|")}\` | ${pct(e.share)} |`),
      ""
    ]),
    "| top self-time functions | share |",
    "|---|---:|",
    ...s.topSelf.map((e) => `| \`${e.name.replace(/\|/g, "\\|")}\` | ${pct(e.share)} |`),
    ""
  ]
  return lines.join("\n")
}
