/**
 * Settings of the WebSocket bench: defaults, overridden by `BENCH_<NAME>` environment variables,
 * overridden by `--kebab-name=value` arguments (`--flag` alone means true, `--no-flag` false).
 */

import { envName, kebab, parseServerEnv, readRaw } from "../lib/args.js"

export interface Settings {
  /** Server on which `bench_ws_<random>` is created (and dropped). */
  readonly databaseUrl: string
  /** User–trainer pairs: one conversation and two sockets each. */
  readonly pairs: number
  /** Requests in flight at once during setup (argon2 makes user creation and login slow). */
  readonly setupConcurrency: number
  /** Offered rates (msgs/s) of the fixed runs. */
  readonly rates: ReadonlyArray<number>
  /** Seconds of sending per fixed run. */
  readonly seconds: number
  /** Capacity search: rates tried in order, stopping at the first that fails. Empty: no search. */
  readonly searchRates: ReadonlyArray<number>
  readonly searchSeconds: number
  /** A search step fails when ack p99 reaches this (ms), or anything is lost or duplicated. */
  readonly searchMaxP99Ms: number
  /** Seconds of sending (at the first fixed rate, at most 1,000/s) before the measured runs; not reported. */
  readonly warmupSeconds: number
  /** After the last scheduled send, wait at most this long for the acks and deliveries still due. */
  readonly drainSeconds: number
  /** Load generator processes; the pairs and the rate are split evenly between them. */
  readonly loadgens: number
  /** Extra sockets opened (and closed again) only to measure the server's memory per idle connection. */
  readonly idleSockets: number
  /** Characters per message. */
  readonly contentBytes: number
  /** Run `npm run build` first (the bench always runs the compiled server, `node dist/src/main.js`). */
  readonly build: boolean
  /**
   * `worktree`: the server is built from the working tree; `head`: from the last commit, exported to a
   * temporary directory (when others are editing src/ and the working tree does not build).
   */
  /** `worktree`, or a git revision (`head` = HEAD) exported and built in a temporary directory. */
  readonly source: string
  /** Start the server under `node --cpu-prof` and summarise each measured window. */
  readonly cpuProf: boolean
  /** More environment for the server, `NAME=value` separated by spaces (e.g. `DB_APPEND_WORKERS=8`); wins over the bench's. */
  readonly serverEnv: Readonly<Record<string, string>>
  /** DB_POOL_MAX for the server (its default, 20, when unset). */
  readonly dbPoolMax: number | undefined
  /** Append the run to bench/RESULTS.md. */
  readonly record: boolean
  /** Wait at most this long (s) for other processes to leave the CPU before measuring. */
  readonly waitQuiet: number
  /** A run during which other processes used more than this (% of a core) is repeated, … */
  readonly noisyPercent: number
  /** … at most this many times. */
  readonly retries: number
  /**
   * Server processes. 1: one instance, no Redis (in-memory fan-out). N > 1: N instances on one database
   * and one Redis (`redisUrl`, a fresh random REDIS_PREFIX per run, its keys deleted at the end); every
   * pair's user socket on instance A, its trainer socket on another, so every delivery crosses Redis.
   */
  readonly instances: number
  /** Redis for instances > 1 (BENCH_REDIS_URL, else REDIS_URL, else redis://127.0.0.1:6379). */
  readonly redisUrl: string
  /**
   * Instances > 1: the single-instance capacity (msgs/s) the capacity is compared with; when unset, the
   * newest single-instance WebSocket section of bench/RESULTS.md that found one.
   */
  readonly singleCapacity: number | undefined
  /** `ws`: the generator's sockets are native /ws ones; `socketio`: socket.io-client connections (the original's clients). */
  readonly transport: "ws" | "socketio"
  /** The trainers (receivers) open no socket: every message is for someone offline (no delivery is measured). */
  readonly offlineRecipients: boolean
  /** Push on: a fake FCM in the bench process, a device per trainer; pushes counted per run. */
  readonly push: boolean
  /** PUSH_COALESCE for the server when push is on (short, so that pushes keep coming). */
  readonly pushCoalesce: string
  /** A webhook for message.created to a receiver in the bench process; events counted per run. */
  readonly webhook: boolean
}

const defaults = {
  databaseUrl: "postgres://postgres@127.0.0.1:5432/postgres",
  pairs: 100,
  setupConcurrency: 8,
  rates: "1000,5000",
  seconds: 15,
  searchRates: "2000,2500,3000,4000,6000,8000,10000,12000,14000,16000,20000",
  searchSeconds: 10,
  searchMaxP99Ms: 100,
  warmupSeconds: 5,
  drainSeconds: 30,
  loadgens: 1,
  idleSockets: 2000,
  contentBytes: 100,
  build: true,
  source: "worktree",
  cpuProf: false,
  record: true,
  serverEnv: "",
  waitQuiet: 120,
  noisyPercent: 30,
  retries: 2,
  instances: 1,
  redisUrl: "redis://127.0.0.1:6379",
  transport: "ws",
  offlineRecipients: false,
  push: false,
  pushCoalesce: "1 second",
  webhook: false
} as const

const known = [...Object.keys(defaults), "dbPoolMax", "singleCapacity", "help"]


/** The `BENCH_*` variables this bench reads (for the record of the exact command). */
export const envNames = known.filter((n) => n !== "help").map(envName)

export const usage = `npm run bench:ws [-- --name=value ...]

Every setting is also read from BENCH_<NAME> (e.g. BENCH_RATES=1000,5000 BENCH_SECONDS=15); arguments win.

  --database-url URL        server for the throwaway bench_ws_<random> database [${defaults.databaseUrl}]
  --pairs N                 user–trainer pairs = conversations; 2 sockets each [${defaults.pairs}]
  --setup-concurrency N     REST requests in flight during setup [${defaults.setupConcurrency}]
  --rates LIST              offered msgs/s of the fixed runs [${defaults.rates}]
  --seconds S               seconds per fixed run [${defaults.seconds}]
  --search-rates LIST       capacity search steps, "" for none [${defaults.searchRates}]
  --search-seconds S        seconds per search step [${defaults.searchSeconds}]
  --search-max-p99-ms MS    a step fails at this ack p99, or on any loss [${defaults.searchMaxP99Ms}]
  --warmup-seconds S        unreported sends first, and at its rate before each fixed run above the last [${defaults.warmupSeconds}]
  --drain-seconds S         wait for late acks/deliveries after a run [${defaults.drainSeconds}]
  --loadgens N              load generator processes [${defaults.loadgens}]
  --idle-sockets N          extra idle sockets for the memory-per-connection figure [${defaults.idleSockets}]
  --content-bytes N         characters per message [${defaults.contentBytes}]
  --no-build                run the existing dist/ as is (source=worktree)
  --source worktree|REF     build the working tree, or a git revision (head, a tag, a commit) in a temporary directory [${defaults.source}]
  --offline-recipients      trainers open no socket: every message is for someone offline (acks only)
  --push                    a fake FCM provider in the bench and a device per trainer; counts pushes per run
  --webhook                 a webhook for message.created to a receiver in the bench; counts events per run
  --push-coalesce D         the server's PUSH_COALESCE with --push [${defaults.pushCoalesce}]
  --cpu-prof                profile the server (node --cpu-prof) and summarise each window
  --db-pool-max N           DB_POOL_MAX for the server [server default, 20]
  --server-env "A=1 B=2"    more environment for the server (wins over the bench's settings) [none]
  --no-record               do not append to bench/RESULTS.md
  --wait-quiet S            wait up to S s for other processes to go idle before each run [${defaults.waitQuiet}]
  --noisy-percent P         repeat a run during which other processes used > P% of a core … [${defaults.noisyPercent}]
  --retries N               … at most N times [${defaults.retries}]
  --instances N             server processes [${defaults.instances}]: N > 1 runs them on one database and one
                            Redis (fresh REDIS_PREFIX, deleted at the end), user sockets on instance A and
                            trainer sockets on the others, so every delivery crosses Redis
  --transport ws|socketio   the generator's sockets: native /ws, or socket.io-client on /socket.io/ [${defaults.transport}]
  --redis-url URL           Redis for --instances > 1 [REDIS_URL, else ${defaults.redisUrl}]
  --single-capacity N       --instances > 1: single-instance capacity (msgs/s) to compare with [the newest
                            single-instance section of bench/RESULTS.md with a capacity]`

const int = (name: string, value: string, min: number) => {
  const n = Number(value)
  if (value.trim() === "" || !Number.isInteger(n) || n < min) {
    throw new Error(`${kebab(name)} must be an integer >= ${min}, got ${JSON.stringify(value)}`)
  }
  return n
}
const num = (name: string, value: string, min: number) => {
  const n = Number(value)
  if (value.trim() === "" || !Number.isFinite(n) || n < min) {
    throw new Error(`${kebab(name)} must be a number >= ${min}, got ${JSON.stringify(value)}`)
  }
  return n
}
const bool = (name: string, value: string) => {
  if (/^(1|true|yes|on)$/i.test(value)) return true
  if (/^(0|false|no|off)$/i.test(value)) return false
  throw new Error(`${kebab(name)} must be true or false, got ${JSON.stringify(value)}`)
}
const list = (name: string, value: string) =>
  value.split(",").map((s) => s.trim()).filter((s) => s !== "").map((s) => num(name, s, 1))

export const parseSettings = (argv: ReadonlyArray<string>, env: NodeJS.ProcessEnv): Settings | "help" => {
  const raw = readRaw(known, argv, env)
  if (raw.has("help")) return "help"
  const get = <K extends keyof typeof defaults>(name: K): string => raw.get(name) ?? String(defaults[name])
  const dbPoolMax = raw.get("dbPoolMax")
  const singleCapacity = raw.get("singleCapacity")
  const source = get("source")
  if (source === "") throw new Error("source must be worktree or a git revision")
  const settings: Omit<Settings, "transport" | "offlineRecipients" | "push" | "pushCoalesce" | "webhook"> = {
    databaseUrl: get("databaseUrl"),
    pairs: int("pairs", get("pairs"), 1),
    setupConcurrency: int("setupConcurrency", get("setupConcurrency"), 1),
    rates: list("rates", get("rates")),
    seconds: num("seconds", get("seconds"), 1),
    searchRates: list("searchRates", get("searchRates")),
    searchSeconds: num("searchSeconds", get("searchSeconds"), 1),
    searchMaxP99Ms: num("searchMaxP99Ms", get("searchMaxP99Ms"), 0),
    warmupSeconds: num("warmupSeconds", get("warmupSeconds"), 0),
    drainSeconds: num("drainSeconds", get("drainSeconds"), 1),
    loadgens: int("loadgens", get("loadgens"), 1),
    idleSockets: int("idleSockets", get("idleSockets"), 0),
    contentBytes: int("contentBytes", get("contentBytes"), 40),
    build: bool("build", get("build")),
    serverEnv: parseServerEnv(get("serverEnv")),
    source,
    cpuProf: bool("cpuProf", get("cpuProf")),
    dbPoolMax: dbPoolMax === undefined || dbPoolMax === "" ? undefined : int("dbPoolMax", dbPoolMax, 1),
    record: bool("record", get("record")),
    waitQuiet: num("waitQuiet", get("waitQuiet"), 0),
    noisyPercent: num("noisyPercent", get("noisyPercent"), 0),
    retries: int("retries", get("retries"), 0),
    instances: int("instances", get("instances"), 1),
    redisUrl: raw.get("redisUrl") ?? (env.REDIS_URL !== undefined && env.REDIS_URL !== "" ? env.REDIS_URL : defaults.redisUrl),
    singleCapacity: singleCapacity === undefined || singleCapacity === "" ? undefined : num("singleCapacity", singleCapacity, 1)
  }
  const transport = get("transport")
  if (transport !== "ws" && transport !== "socketio") throw new Error(`transport must be ws or socketio, got ${JSON.stringify(transport)}`)
  if (settings.loadgens > settings.pairs) throw new Error("loadgens must be at most pairs (each needs conversations)")
  return {
    ...settings,
    transport,
    offlineRecipients: bool("offlineRecipients", get("offlineRecipients")),
    push: bool("push", get("push")),
    pushCoalesce: get("pushCoalesce"),
    webhook: bool("webhook", get("webhook"))
  }
}
