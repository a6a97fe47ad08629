/**
 * Bench settings: defaults, overridden by `BENCH_*` environment variables, overridden by
 * `--kebab-name=value` (or `--kebab-name value`) arguments. `--flag` alone means true.
 */

import { kebab, parseServerEnv, readRaw } from "./args.js"

export const scenarioNames = ["send", "page", "send-rate"] as const
export type ScenarioName = (typeof scenarioNames)[number]

export interface Settings {
  /** Server on which the bench database is created (and dropped). */
  readonly databaseUrl: string
  readonly trainers: number
  readonly users: number
  /** Requests in flight at once during setup (argon2 makes user creation and login slow). */
  readonly setupConcurrency: number
  /** Seconds per measured scenario. */
  readonly duration: number
  /** Seconds of closed-loop sends before the first scenario, not reported. */
  readonly warmup: number
  /** Seconds at the start of each scenario left out of its latency and rate figures. */
  readonly settle: number
  readonly sendConnections: number
  readonly sendRate: number
  /** Connections for the fixed-rate send scenario; default one per request per second. */
  readonly sendRateConnections: number
  readonly pageRate: number
  readonly pageConnections: number
  readonly pageLimit: number
  readonly scenarios: ReadonlyArray<ScenarioName>
  /** `dist`: build then run the compiled JS (production-like); `tsx`: run the sources. */
  readonly server: "dist" | "tsx"
  /** What to run: the working tree's sources, or a git revision's; built in a private directory. */
  readonly source: string
  /** Build (server=dist); `false` runs the repository's dist/ as it is. */
  readonly build: boolean
  /** Start the server with `--cpu-prof` and summarise each scenario's samples. */
  readonly cpuProf: boolean
  /** Counts database transactions per request on an idle server at the end (about 35 s). */
  readonly probe: boolean
  /** Database transactions per response in each scenario (waits 11 s around each for the statistics). */
  readonly dbStats: boolean
  /** Passed to the server as DB_POOL_MAX when set. */
  readonly dbPoolMax: number | undefined
  /** More environment for the server (wins over the bench's settings). */
  readonly serverEnv: Readonly<Record<string, string>>
  /** Append the run to bench/RESULTS.md. */
  readonly record: boolean
  /** Seconds to wait, at most, for other processes to leave the CPU before the load starts. */
  readonly waitQuiet: number
}

const defaults = {
  databaseUrl: "postgres://postgres@127.0.0.1:5432/postgres",
  trainers: 20,
  users: 200,
  setupConcurrency: 8,
  duration: 20,
  warmup: 3,
  settle: 2,
  sendConnections: 50,
  sendRate: 3000,
  pageRate: 1000,
  pageLimit: 50,
  scenarios: "send,page,send-rate",
  server: "dist",
  source: "worktree",
  build: true,
  cpuProf: false,
  probe: true,
  dbStats: true,
  record: true,
  waitQuiet: 180
} as const


const known = [
  ...Object.keys(defaults),
  "sendRateConnections",
  "pageConnections",
  "dbPoolMax",
  "serverEnv",
  "help"
]

export const usage = `npm run bench:http [-- --name=value ...]

Every setting is also read from BENCH_<NAME> (e.g. BENCH_DURATION=10); arguments win.

  --database-url URL          server for the throwaway bench_http_<random> database [${defaults.databaseUrl}]
  --trainers N --users N      accounts created over the API [${defaults.trainers}, ${defaults.users}]
  --setup-concurrency N       requests in flight during setup [${defaults.setupConcurrency}]
  --scenarios LIST            any of send,page,send-rate [${defaults.scenarios}]
  --duration S                seconds per scenario [${defaults.duration}]
  --warmup S                  closed-loop sends before the first scenario [${defaults.warmup}]
  --settle S                  seconds left out at the start of each scenario's figures [${defaults.settle}]
  --send-connections N        closed-loop send connections [${defaults.sendConnections}]
  --send-rate R               fixed-rate send target, req/s [${defaults.sendRate}]
  --send-rate-connections N   connections for it [100, like a load balancer's keep-alive pool; = send-rate
                              for one request per connection per second]
  --page-rate R               fixed-rate history target, req/s [${defaults.pageRate}]
  --page-connections N        connections for it [100, like a load balancer's keep-alive pool; = page-rate
                              for one request per connection per second, the clients' own sockets]
  --page-limit N              history page size [${defaults.pageLimit}]
  --server dist|tsx           compiled JS (production-like) or the TypeScript through tsx [${defaults.server}]
  --source worktree|REF       the working tree's src/ or a git revision's (e.g. HEAD), copied and built
                              (tsc -p tsconfig.build.json) in a temporary directory [${defaults.source}]
  --no-build                  run the repository's dist/ as it is (npm run build output), no copy
  --cpu-prof                  profile the server (node --cpu-prof) and summarise each scenario
  --no-probe                  skip the unloaded one-at-a-time probe at the end (~35 s)
  --no-db-stats               skip counting transactions per response (11 s waits around each scenario)
  --db-pool-max N             DB_POOL_MAX for the server [server default, 20]
  --server-env "A=1 B=2"      more environment for the server (wins over the bench's settings) [none]
  --no-record                 do not append to bench/RESULTS.md
  --wait-quiet S              wait up to S seconds for other processes to go idle first [${defaults.waitQuiet}]`

const int = (name: string, value: string, min: number) => {
  const n = Number(value)
  if (!Number.isInteger(n) || n < min) throw new Error(`--${kebab(name)} must be an integer >= ${min}, got ${value}`)
  return n
}
const num = (name: string, value: string, min: number) => {
  const n = Number(value)
  if (!Number.isFinite(n) || n < min) throw new Error(`--${kebab(name)} must be a number >= ${min}, got ${value}`)
  return n
}
const bool = (name: string, value: string) => {
  if (/^(1|true|yes|on)$/i.test(value)) return true
  if (/^(0|false|no|off)$/i.test(value)) return false
  throw new Error(`--${kebab(name)} must be true or false, got ${value}`)
}

export const parseSettings = (argv: ReadonlyArray<string>, env: NodeJS.ProcessEnv): Settings | "help" => {
  const raw = readRaw(known, argv, env)
  if (raw.has("help")) return "help"
  const get = <K extends keyof typeof defaults>(name: K): string => raw.get(name) ?? String(defaults[name])
  const scenarios = get("scenarios").split(",").map((s) => s.trim()).filter((s) => s !== "")
  for (const s of scenarios) {
    if (!(scenarioNames as ReadonlyArray<string>).includes(s)) {
      throw new Error(`Unknown scenario ${s}; known: ${scenarioNames.join(", ")}`)
    }
  }
  const server = get("server")
  if (server !== "dist" && server !== "tsx") throw new Error(`--server must be dist or tsx, got ${server}`)
  const sendRate = num("sendRate", get("sendRate"), 1)
  const pageRate = num("pageRate", get("pageRate"), 1)
  const dbPoolMax = raw.get("dbPoolMax")
  return {
    databaseUrl: get("databaseUrl"),
    trainers: int("trainers", get("trainers"), 1),
    users: int("users", get("users"), 1),
    setupConcurrency: int("setupConcurrency", get("setupConcurrency"), 1),
    duration: num("duration", get("duration"), 1),
    warmup: num("warmup", get("warmup"), 0),
    settle: num("settle", get("settle"), 0),
    sendConnections: int("sendConnections", get("sendConnections"), 1),
    sendRate,
    sendRateConnections: int("sendRateConnections", raw.get("sendRateConnections") ?? "100", 1),
    pageRate,
    pageConnections: int("pageConnections", raw.get("pageConnections") ?? "100", 1),
    pageLimit: int("pageLimit", get("pageLimit"), 1),
    scenarios: scenarios as Array<ScenarioName>,
    server,
    source: get("source"),
    build: bool("build", get("build")),
    cpuProf: bool("cpuProf", get("cpuProf")),
    probe: bool("probe", get("probe")),
    dbStats: bool("dbStats", get("dbStats")),
    dbPoolMax: dbPoolMax === undefined ? undefined : int("dbPoolMax", dbPoolMax, 1),
    serverEnv: parseServerEnv(raw.get("serverEnv") ?? ""),
    record: bool("record", get("record")),
    waitQuiet: num("waitQuiet", get("waitQuiet"), 0)
  }
}
