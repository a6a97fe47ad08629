/**
 * Summarises a CPU profile written by `npm run bench:http -- --cpu-prof` (bench/profiles/<run>/), whole or
 * during one scenario (the run's windows.json says when each ran):
 *
 *   npx tsx bench/profile.ts bench/profiles/<run> [--scenario send] [--top 30] [--match jwtVerify,HttpServer]
 *
 * `--match` adds the share of busy time with a frame whose "function file:line" contains each string.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as Profile from "./lib/profile.js"

const args = process.argv.slice(2)
const option = (name: string) => {
  const i = args.indexOf(`--${name}`)
  return i < 0 ? undefined : args[i + 1]
}
const target = args[0]
if (target === undefined || target.startsWith("--")) {
  console.error("usage: npx tsx bench/profile.ts <run dir | file.cpuprofile> [--scenario NAME] [--top N] [--match a,b]")
  process.exit(2)
}
const dir = Fs.statSync(target).isDirectory() ? target : Path.dirname(target)
const files = Fs.statSync(target).isDirectory()
  ? Fs.readdirSync(target).filter((f) => f.endsWith(".cpuprofile")).map((f) => Path.join(target, f))
  : [target]
const windowsFile = Path.join(dir, "windows.json")
const windows: Array<{ name: string; fromUs: number; toUs: number }> = Fs.existsSync(windowsFile)
  ? JSON.parse(Fs.readFileSync(windowsFile, "utf8"))
  : []
const scenario = option("scenario")
const window = scenario === undefined ? undefined : windows.find((w) => w.name === scenario)
if (scenario !== undefined && window === undefined) {
  console.error(`no window for ${scenario} in ${windowsFile} (known: ${windows.map((w) => w.name).join(", ") || "none"})`)
  process.exit(2)
}
const top = Number(option("top") ?? 15)
const match = (option("match") ?? "").split(",").filter((m) => m !== "")
for (const file of files) {
  const profile = Profile.load(file)
  if (window !== undefined && !(profile.startTime <= window.fromUs && window.toUs <= profile.endTime)) continue
  console.log(Profile.toMarkdown(`${file}${scenario === undefined ? "" : ` during ${scenario}`}`, Profile.summarize(profile, window, top, match)))
}
