/**
 * WebSocket benchmark of the chat gateway (/ws) against a real server process on a throwaway Postgres database.
 *
 *   npm run bench:ws [-- --rates=1000,5000 --seconds=15 ...]     (npm run bench:ws -- --help)
 *
 * 1. Creates `bench_ws_<random>` on BENCH_DATABASE_URL's server (dropped at the end, also on failure),
 *    builds the app (the working tree, or with --source=<ref> that git revision exported to a temporary
 *    directory) and starts `node dist/src/main.js` on it (production settings, a free port, send rate
 *    limits out of the way).
 * 2. Over REST: the admin creates N trainers and N users, assigns them in pairs, everyone logs in, each
 *    user opens the conversation with their trainer.
 * 3. Load generator process(es) (bench/ws/loadgen.ts) open a socket per participant and join every
 *    conversation on both sides. Memory per connection: the server's RSS before any socket, and with
 *    them plus `idleSockets` extra idle sockets open (closed again afterwards).
 * 4. Runs: each offered rate for `seconds` (after `warmupSeconds` at that rate when it is higher than the
 *    last), open loop over the user sockets (latency from each message's
 *    scheduled send time); ack = scheduled → ack, delivery = scheduled → newMessage at the trainer's
 *    socket. Then a capacity search over `searchRates` until ack p99 ≥ `searchMaxP99Ms` or any loss.
 *    Each run is checked: every message acked, delivered once, stored once (SQL); at the end every
 *    conversation's seqs are exactly 1..last_seq and the stored total equals the acks.
 * 5. Prints a markdown summary and appends it to bench/RESULTS.md.
 * With --instances N (N > 1): N server processes on the same database, one Redis (REDIS_URL, a fresh
 * REDIS_PREFIX whose keys are deleted at the end) and one JWT secret, on their own ports; every user
 * socket (sender) on instance A, every trainer socket (receiver) on another instance, so each delivery
 * crosses Redis pub/sub ("cross-instance delivery"). CPU is summed over the server processes and shown
 * per process, Redis's apart; the targets are those of that mode.
 * Before each run it waits (≤ waitQuiet) for other processes to leave the CPU, and repeats a run during
 * which they took more than noisyPercent of a core (≤ retries times): the box is shared.
 */
import * as hdr from "hdr-histogram-js"
import { Redis as IoRedis } from "ioredis"
import { type ChildProcess, fork } from "node:child_process"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { setTimeout as sleep } from "node:timers/promises"
import { fileURLToPath } from "node:url"
import * as Database from "./lib/db.js"
import * as Profile from "./lib/profile.js"
import * as Server from "./lib/server.js"
import { call, expectStatus, pool } from "./lib/rest.js"
import { envNames, parseSettings, type Settings, usage } from "./ws/config.js"
import type { Pair, Reply, Request, RunReport } from "./ws/ipc.js"
import * as Proc from "./lib/proc.js"
import { makeCleanups } from "./lib/cleanup.js"
import * as PushFake from "./ws/pushFake.js"
import * as WebhookFake from "./ws/webhookFake.js"

const root = Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "..")
const resultsFile = Path.join(root, "bench", "RESULTS.md")
const started = Date.now()
const log = (message: string) => console.log(`[bench:ws ${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s] ${message}`)

// ---------------------------------------------------------------------------------------------- REST

const password = "bench-password-1"

/** Instance 0 is A, 1 is B, … */
const instanceName = (i: number) => String.fromCharCode(65 + (i % 26)) + (i >= 26 ? String(Math.floor(i / 26)) : "")

/** A URL without its password, for the log and the report. */
const redactUrl = (url: string) => {
  try {
    const u = new URL(url)
    if (u.password !== "") u.password = "***"
    return u.toString()
  } catch {
    return "(unparsable URL)"
  }
}

/** N trainer–user pairs with tokens and an open conversation each, and one idle user (for idle sockets). */
const setup = async (base: string, admin: { email: string; password: string }, settings: Settings) => {
  const adminToken = expectStatus(await call(base, "POST", "/auth/login", { body: admin }), 200, "admin login").accessToken
  const indexes = Array.from({ length: settings.pairs }, (_, i) => i)
  const create = (role: "trainer" | "user", name: string) =>
    call(base, "POST", "/users", {
      token: adminToken,
      body: { email: `${name}@bench.local`, password, firstName: name, lastName: "Bench", role }
    }).then((r) => expectStatus(r, 201, `create ${name}`).id as string)
  const login = (name: string) =>
    call(base, "POST", "/auth/login", { body: { email: `${name}@bench.local`, password } })
      .then((r) => expectStatus(r, 200, `login ${name}`).accessToken as string)

  let t = Date.now()
  const trainerIds = await pool(indexes, settings.setupConcurrency, (i) => create("trainer", `trainer${i}`))
  const userIds = await pool(indexes, settings.setupConcurrency, (i) => create("user", `user${i}`))
  const idleUserId = await create("user", "idle")
  log(`created ${trainerIds.length} trainers and ${userIds.length + 1} users in ${((Date.now() - t) / 1000).toFixed(1)} s`)

  t = Date.now()
  const pairs = await pool(indexes, settings.setupConcurrency, async (i): Promise<Pair> => {
    const userId = userIds[i]!
    const trainerId = trainerIds[i]!
    expectStatus(
      await call(base, "POST", `/users/${userId}/assign-trainer/${trainerId}`, { token: adminToken }),
      200,
      "assign trainer"
    )
    const userToken = await login(`user${i}`)
    const trainerToken = await login(`trainer${i}`)
    const conversationId = expectStatus(
      await call(base, "POST", "/chat/conversations", { token: userToken, body: { participantId: trainerId } }),
      201,
      "open conversation"
    ).id as string
    return { conversationId, userId, userToken, trainerId, trainerToken }
  })
  const idleToken = await login("idle")
  log(`assigned, logged in and opened ${pairs.length} conversations in ${((Date.now() - t) / 1000).toFixed(1)} s`)
  return { pairs, idle: { id: idleUserId, token: idleToken } }
}

// ------------------------------------------------------------------------------------ load generators

interface LoadGen {
  readonly pid: number
  readonly request: <T extends Reply["type"]>(request: Request, expect: T) => Promise<Extract<Reply, { type: T }>>
  readonly kill: () => void
}

const startLoadGen = (index: number): LoadGen => {
  const child: ChildProcess = fork(Path.join(root, "bench", "ws", "loadgen.ts"), [], {
    cwd: root,
    execArgv: ["--import", "tsx"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
    serialization: "advanced"
  })
  let waiting: { resolve: (reply: Reply) => void; reject: (error: Error) => void } | undefined
  child.on("message", (message: Reply) => {
    const w = waiting
    waiting = undefined
    if (w === undefined) return log(`load generator ${index}: unexpected ${message.type}`)
    if (message.type === "failed") w.reject(new Error(`load generator ${index}: ${message.message}`))
    else w.resolve(message)
  })
  child.on("exit", (code, signal) => {
    const w = waiting
    waiting = undefined
    w?.reject(new Error(`load generator ${index} exited (${code ?? signal})`))
  })
  return {
    pid: child.pid!,
    request: (request, expect) =>
      new Promise((resolve, reject) => {
        if (waiting !== undefined) return reject(new Error(`load generator ${index} is busy`))
        waiting = {
          resolve: (reply) =>
            reply.type === expect
              ? resolve(reply as Extract<Reply, { type: typeof expect }>)
              : reject(new Error(`load generator ${index}: expected ${expect}, got ${reply.type}`)),
          reject
        }
        child.send(request)
      }),
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
    }
  }
}

// --------------------------------------------------------------------------------------------- runs

interface Latency {
  readonly count: number
  readonly p50: number
  readonly p99: number
  readonly p999: number
  readonly max: number
}

const latencyOf = (encoded: ReadonlyArray<string>): Latency => {
  const merged = hdr.build({ numberOfSignificantValueDigits: 3 })
  for (const e of encoded) merged.add(hdr.decodeFromCompressedBase64(e))
  const ms = (us: number) => us / 1000
  return merged.totalCount === 0
    ? { count: 0, p50: Number.NaN, p99: Number.NaN, p999: Number.NaN, max: Number.NaN }
    : {
      count: merged.totalCount,
      p50: ms(merged.getValueAtPercentile(50)),
      p99: ms(merged.getValueAtPercentile(99)),
      p999: ms(merged.getValueAtPercentile(99.9)),
      max: ms(merged.maxValue)
    }
}

/** A run: the load generators' counts (summed), and what the bench measured around them. */
interface RunResult extends
  Pick<
    RunReport,
    | "runNo"
    | "scheduled"
    | "sent"
    | "acked"
    | "errors"
    | "unanswered"
    | "badAcks"
    | "undelivered"
    | "duplicated"
    | "misdelivered"
    | "echoes"
    | "closedSockets"
  >
{
  readonly kind: "warm-up" | "fixed" | "search"
  readonly offered: number
  readonly seconds: number
  /** Rows of this run in the database, and their distinct clientMessageIds. */
  readonly stored: number
  readonly storedDistinct: number
  /** Stored messages per second from the first scheduled send to the last ack. */
  readonly achieved: number
  /** Messages not acked (error, or no answer) when the drain ended. */
  readonly unacked: number
  /** Messages never stored, or acked but never delivered to the counterpart. */
  readonly lost: number
  /** Deliveries beyond the first, rows beyond one per clientMessageId, rows beyond the acks. */
  readonly duplicates: number
  readonly ack: Latency
  readonly delivery: Latency
  readonly lag: Latency
  readonly cpu: Proc.CpuSplit
  /** All server processes together. */
  readonly serverUsPerMessage: number
  readonly postgresUsPerMessage: number
  /** redis-server (several instances only; NaN otherwise). */
  readonly redisUsPerMessage: number
  readonly window: { readonly fromUs: number; readonly toUs: number }
}

const passes = (r: RunResult, maxP99Ms: number) =>
  r.unacked === 0 && r.lost === 0 && r.duplicates === 0 && r.misdelivered === 0 && r.badAcks === 0 &&
  Object.keys(r.errors).length === 0 && r.ack.count > 0 && r.ack.p99 < maxP99Ms

// ------------------------------------------------------------------------------------------- report

const f0 = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString("en-US") : "–")
const ms = (x: number) => (Number.isFinite(x) ? (x < 10 ? x.toFixed(2) : x < 100 ? x.toFixed(1) : Math.round(x).toLocaleString("en-US")) : "–")
const kb = (bytes: number) => (Number.isFinite(bytes) ? `${(bytes / 1024).toFixed(1)} KiB` : "–")
const mb = (bytes: number) => (Number.isFinite(bytes) ? `${(bytes / 1024 / 1024).toFixed(1)} MiB` : "–")

const errorsText = (errors: Record<string, number>) => {
  const entries = Object.entries(errors)
  return entries.length === 0 ? "0" : entries.map(([code, n]) => `${n} ${code}`).join(", ")
}

const runTable = (runs: ReadonlyArray<RunResult>, maxP99Ms: number) => [
  `| run | offered msgs/s | achieved persisted msgs/s | ack p50 / p99 / p99.9 ms | delivery p50 / p99 / p99.9 ms | unacked | lost | dup | errors | server CPU-µs/msg | Postgres CPU-µs/msg | CPU % of a core: server / PG / loadgen / other / idle | generator lag p99 ms | ok: ack p99 < ${maxP99Ms} ms, all acked, delivered and stored once |`,
  "|---|---:|---:|---|---|---:|---:|---:|---|---:|---:|---|---:|---|",
  ...runs.map((r) =>
    `| ${r.kind} | ${f0(r.offered)} | ${f0(r.achieved)} | ${ms(r.ack.p50)} / ${ms(r.ack.p99)} / ${ms(r.ack.p999)} | ${
      ms(r.delivery.p50)
    } / ${ms(r.delivery.p99)} / ${ms(r.delivery.p999)} | ${f0(r.unacked)} | ${f0(r.lost)} | ${f0(r.duplicates)} | ${errorsText(r.errors)} | ${
      f0(r.serverUsPerMessage)
    } | ${f0(r.postgresUsPerMessage)} | ${f0(r.cpu.server)} / ${f0(r.cpu.postgres)} / ${f0(r.cpu.loadgen)} / ${
      f0(r.cpu.other + r.cpu.bench)
    } / ${f0(r.cpu.idle)} | ${ms(r.lag.p99)} | ${passes(r, maxP99Ms) ? "yes" : "**no**"} |`
  )
]

/** The table of the several-instance mode: every delivery crosses Redis; CPU per instance and of Redis. */
const multiRunTable = (runs: ReadonlyArray<RunResult>, maxP99Ms: number, instances: number) => {
  const names = Array.from({ length: instances }, (_, i) => instanceName(i))
  return [
    `| run | offered msgs/s | achieved persisted msgs/s | ack p50 / p99 / p99.9 ms | cross-instance delivery p50 / p99 / p99.9 ms | unacked | lost | dup | errors | server CPU-µs/msg (${instances} processes) | Redis CPU-µs/msg | Postgres CPU-µs/msg | CPU % of a core: ${
      names.map((n) => `server ${n}`).join(" / ")
    } / Redis / PG / loadgen / other / idle | generator lag p99 ms | ok: ack p99 < ${maxP99Ms} ms, all acked, delivered and stored once |`,
    "|---|---:|---:|---|---|---:|---:|---:|---|---:|---:|---:|---|---:|---|",
    ...runs.map((r) =>
      `| ${r.kind} | ${f0(r.offered)} | ${f0(r.achieved)} | ${ms(r.ack.p50)} / ${ms(r.ack.p99)} / ${ms(r.ack.p999)} | ${
        ms(r.delivery.p50)
      } / ${ms(r.delivery.p99)} / ${ms(r.delivery.p999)} | ${f0(r.unacked)} | ${f0(r.lost)} | ${f0(r.duplicates)} | ${errorsText(r.errors)} | ${
        f0(r.serverUsPerMessage)
      } | ${f0(r.redisUsPerMessage)} | ${f0(r.postgresUsPerMessage)} | ${r.cpu.servers.map(f0).join(" / ")} / ${f0(r.cpu.redis)} / ${f0(r.cpu.postgres)} / ${
        f0(r.cpu.loadgen)
      } / ${f0(r.cpu.other + r.cpu.bench)} / ${f0(r.cpu.idle)} | ${ms(r.lag.p99)} | ${passes(r, maxP99Ms) ? "yes" : "**no**"} |`
    )
  ]
}

/**
 * The newest single-instance WebSocket section of bench/RESULTS.md that found a capacity: its capacity and
 * its heading, or undefined.
 */
const singleInstanceCapacity = (text: string): { readonly capacity: number; readonly section: string } | undefined => {
  const sections = text.split(/^(?=## )/m).filter((s) => s.startsWith("## WebSocket gateway") && !/instances|Socket\.IO/.test(s.split("\n", 1)[0]!))
  // The newest section with a capacity search decides (one in which no step passed gives none).
  const searched = sections.reverse().find((s) => /^- capacity .*\*\*(?:met|missed)\*\*/m.test(s))
  const match = searched === undefined ? null : /^- capacity .*?: \*\*(?:met|missed)\*\*: ([\d,]+) msgs\/s/m.exec(searched)
  return match === null || searched === undefined
    ? undefined
    : { capacity: Number(match[1]!.replace(/,/g, "")), section: searched.split("\n", 1)[0]!.replace(/^## /, "") }
}

const resultsHeader = `# Benchmarks

Sections are appended by the bench scripts (\`npm run bench:http\`, \`npm run bench:ws\`), newest last.
`

const commandLine = () => {
  const env = envNames.flatMap((name) => {
    const value = process.env[name]
    return value === undefined ? [] : [`${name}=${/^[\w.,:/@=-]*$/.test(value) ? value : JSON.stringify(value)}`]
  })
  const args = process.argv.slice(2)
  const viaNpm = process.env.npm_lifecycle_event === "bench:ws"
  const command = viaNpm
    ? `npm run bench:ws${args.length > 0 ? ` -- ${args.join(" ")}` : ""}`
    : `tsx bench/ws.ts${args.length > 0 ? ` ${args.join(" ")}` : ""}`
  return [...env, command].join(" ")
}

// --------------------------------------------------------------------------------------------- main

const main = async () => {
  const parsed = parseSettings(process.argv.slice(2), process.env)
  if (parsed === "help") {
    console.log(usage)
    return
  }
  const settings = parsed

  const { cleanups, cleanup } = makeCleanups(log)

  let failed = false
  try {
    const gitCommit = await Server.run("git", ["rev-parse", "--short", "HEAD"], root).then((s) => s.trim()).catch(() => "?")
    const gitDirty = await Server.run("git", ["status", "--porcelain", "--", "src"], root)
      .then((s) => s.trim() !== "")
      .catch(() => false)

    const tmp = await Fs.promises.mkdtemp(Path.join(Os.tmpdir(), "bench-ws-"))
    cleanups.push(() => Fs.promises.rm(tmp, { recursive: true, force: true }))

    // The server's code: the working tree, or the last commit exported beside it.
    let serverRoot = root
    const sourceRef = settings.source === "head" ? "HEAD" : settings.source
    const sourceCommit = settings.source === "worktree"
      ? undefined
      : (await Server.run("git", ["rev-parse", "--short", `${sourceRef}^{commit}`], root)).trim()
    if (sourceCommit !== undefined) {
      serverRoot = Path.join(tmp, "src-ref")
      await Fs.promises.mkdir(serverRoot)
      const commit = sourceCommit
      await Server.run("sh", ["-c", `git archive --format=tar ${commit} | tar -x -C '${serverRoot}'`], root)
      await Fs.promises.symlink(Path.join(root, "node_modules"), Path.join(serverRoot, "node_modules"), "dir")
      log(`exported ${sourceRef} (${commit}) to ${serverRoot}; building it`)
      await Server.run("npx", ["tsc", "-p", "tsconfig.build.json"], serverRoot)
    } else if (settings.build) {
      log("npm run build")
      await Server.run("npm", ["run", "build"], root)
    }

    // The database: created here, dropped at the end whatever happens.
    const admin = await Database.connect(settings.databaseUrl)
    cleanups.push(() => admin.close())
    const dbName = `bench_ws_${Crypto.randomBytes(6).toString("hex")}`
    await admin.query(`CREATE DATABASE ${dbName}`)
    cleanups.push(async () => {
      await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`)
      log(`dropped database ${dbName}`)
    })
    const dbUrl = new URL(settings.databaseUrl)
    dbUrl.pathname = `/${dbName}`
    log(`created database ${dbName}`)
    const pgVersion = (await admin.query<{ v: string }>("SELECT current_setting('server_version') AS v"))[0]?.v ?? "?"
    const pgSettings = await admin.query<{ name: string; setting: string }>(
      "SELECT name, current_setting(name) AS setting FROM pg_settings WHERE name IN ('synchronous_commit', 'fsync', 'shared_buffers', 'max_connections') ORDER BY name"
    )

    // Several instances: one Redis, under a prefix of this run's own (its keys deleted at the end).
    const multi = settings.instances > 1
    const redisPrefix = `bench-ws-${Crypto.randomBytes(6).toString("hex")}:`
    const redisChannel = `${redisPrefix}events`
    let redis: IoRedis | undefined
    if (multi) {
      const client = new IoRedis(settings.redisUrl, {
        lazyConnect: true,
        connectionName: "bench-ws",
        maxRetriesPerRequest: 1,
        retryStrategy: (attempt) => (attempt > 20 ? null : Math.min(attempt * 100, 1000))
      })
      client.on("error", () => undefined)
      try {
        await client.connect()
        await client.ping()
      } catch (error) {
        client.disconnect()
        throw new Error(`--instances ${settings.instances} needs Redis at ${redactUrl(settings.redisUrl)} (--redis-url): ${String(error)}`)
      }
      redis = client
      cleanups.push(async () => {
        let deleted = 0
        let cursor = "0"
        do {
          const [next, keys] = await client.scan(cursor, "MATCH", `${redisPrefix}*`, "COUNT", 1000)
          cursor = next
          if (keys.length > 0) deleted += await client.del(...keys)
        } while (cursor !== "0")
        log(`deleted ${deleted} Redis key(s) under ${redisPrefix}`)
        await client.quit().catch(() => client.disconnect())
      })
      log(`Redis at ${redactUrl(settings.redisUrl)}, prefix ${redisPrefix}`)
    }

    // Webhooks: a receiver here, registered once the server is up.
    const webhookFake = settings.webhook ? await WebhookFake.start() : undefined
    if (webhookFake !== undefined) {
      cleanups.push(() => webhookFake.close())
      log(`webhook on: message.created to ${webhookFake.url}`)
    }
    // Push: a fake FCM here, the server pointed at it.
    const pushFake = settings.push ? await PushFake.start() : undefined
    const pushEnv: Record<string, string> = {}
    if (pushFake !== undefined) {
      cleanups.push(() => pushFake.close())
      const account = Path.join(tmp, "fcm.json")
      await Fs.promises.writeFile(account, pushFake.serviceAccount)
      Object.assign(pushEnv, {
        PUSH_FCM_SERVICE_ACCOUNT_FILE: account,
        PUSH_FCM_ENDPOINT: pushFake.endpoint,
        PUSH_COALESCE: settings.pushCoalesce
      })
      log(`push on: a fake FCM at ${pushFake.endpoint}, PUSH_COALESCE ${settings.pushCoalesce}`)
    }

    // The server(s).
    const adminAccount = { email: "admin@bench.local", password: Crypto.randomBytes(12).toString("hex") }
    const jwtSecret = Crypto.randomBytes(32).toString("hex")
    const profileDirs: Array<string> = []
    const servers: Array<Server.RunningServer> = []
    const stoppers: Array<() => Promise<void>> = []
    for (let instance = 0; instance < settings.instances; instance++) {
      const suffix = instance === 0 ? "" : String(instance)
      const profileDir = settings.cpuProf ? Path.join(tmp, `profile${suffix}`) : undefined
      if (profileDir !== undefined) {
        await Fs.promises.mkdir(profileDir, { recursive: true })
        profileDirs.push(profileDir)
      }
      const port = await Server.freePort()
      const serverEnv: Record<string, string> = {
        NODE_ENV: "production",
        LOG_LEVEL: "Warn",
        HOST: "127.0.0.1",
        PORT: String(port),
        DATABASE_URL: dbUrl.toString(),
        DATA_DIR: Path.join(tmp, `data${suffix}`),
        JWT_SECRET: jwtSecret,
        // Runs outlast the default 15-minute access token; the bench signs in once.
        JWT_TTL: "1 day",
        ADMIN_EMAIL: adminAccount.email,
        ADMIN_PASSWORD: adminAccount.password,
        AUTH_RATE_LIMIT_PER_IP: "1000000",
        AUTH_RATE_LIMIT_PER_EMAIL: "1000000",
        // The send limits (per socket, and per user across instances) must not shape the offered load.
        WS_SEND_PER_SECOND: "1000000",
        WS_SEND_BURST: "1000000",
        SEND_RATE_LIMIT: "1000000000",
        // The idle sockets all belong to one user.
        WS_MAX_SOCKETS_PER_USER: "1000000",
        ...(multi ? { REDIS_URL: settings.redisUrl, REDIS_PREFIX: redisPrefix } : {}),
        ...(settings.dbPoolMax === undefined ? {} : { DB_POOL_MAX: String(settings.dbPoolMax) }),
        ...pushEnv,
        ...(webhookFake === undefined ? {} : { WEBHOOK_ALLOW_PRIVATE_URLS: "true" }),
        ...settings.serverEnv
      }
      // One after the other: the first migrates the database and creates the admin.
      const instanceServer = await Server.start({
        root: serverRoot,
        mode: "dist",
        env: serverEnv,
        port,
        logFile: Path.join(tmp, `server${suffix}.log`),
        ...(profileDir === undefined ? {} : { cpuProfDir: profileDir })
      })
      servers.push(instanceServer)
      const name = multi ? `instance ${instanceName(instance)}` : "server"
      let stopped = false
      const stop = async () => {
        if (stopped) return
        stopped = true
        const exit = await instanceServer.stop()
        log(`${name} stopped (${exit.code ?? exit.signal}); it logged ${instanceServer.logLines()} lines at Warn or above`)
        if (exit.code !== 0 || failed) for (const line of instanceServer.logTail().slice(-15)) log(`  ${name}: ${line.slice(0, 400)}`)
      }
      stoppers.push(stop)
      cleanups.push(stop)
      log(`${name} ready at ${instanceServer.url} (pid ${instanceServer.pid}): ${instanceServer.command}`)
    }
    const server = servers[0]!
    const stopServer = async () => {
      await Promise.all(stoppers.map((stop) => stop()))
    }
    const serverPids = servers.map((s) => s.pid)
    const wsUrl = server.url.replace(/^http/, "ws")
    const wsUrls = servers.map((s) => s.url.replace(/^http/, "ws"))
    if (redis !== undefined) {
      // Every instance listens on the run's channel before anything is sent.
      const deadline = Date.now() + 15_000
      for (;;) {
        const reply = await redis.call("PUBSUB", "NUMSUB", redisChannel) as [string, number | string]
        const subscribers = Number(reply[1])
        if (subscribers >= settings.instances) {
          log(`${subscribers} instances subscribed to ${redisChannel}`)
          break
        }
        if (Date.now() > deadline) {
          throw new Error(`only ${subscribers} of ${settings.instances} instances subscribed to ${redisChannel} within 15 s`)
        }
        await sleep(200)
      }
    }

    const db = await Database.connect(dbUrl.toString())
    cleanups.push(() => db.close())

    const { idle, pairs } = await setup(server.url, adminAccount, settings)
    if (pushFake !== undefined) {
      await pool(pairs, settings.setupConcurrency, (p, i) =>
        call(server.url, "POST", "/devices", { token: p.trainerToken, body: { platform: "fcm", token: `bench-device-${i}` } })
          .then((r) => expectStatus(r, 201, "register a device")))
      log(`registered a device for each of ${pairs.length} trainers`)
    }

    if (webhookFake !== undefined) {
      const token = expectStatus(await call(server.url, "POST", "/auth/login", { body: adminAccount }), 200, "admin login")
        .accessToken as string
      const created = await call(server.url, "POST", "/admin/webhooks", {
        token,
        body: { url: webhookFake.url, events: ["message.created"] }
      })
      expectStatus(created, 201, "register the webhook")
    }

    // Load generators: the pairs split evenly.
    const loadgens = Array.from({ length: settings.loadgens }, (_, i) => startLoadGen(i))
    cleanups.push(async () => {
      for (const lg of loadgens) lg.kill()
    })
    const shares = loadgens.map((_, g) => pairs.filter((_, i) => i % settings.loadgens === g))
    // Several instances: every user socket (the senders) on A, the trainer sockets (the receivers) spread
    // over the others, so that every newMessage reaches its socket through Redis.
    const trainerInstance = (pairIndex: number) => 1 + (pairIndex % (settings.instances - 1))
    const trainerShares = loadgens.map((_, g) =>
      pairs.flatMap((_, i) => (i % settings.loadgens === g ? [wsUrls[trainerInstance(i)]!] : []))
    )

    // RSS of the server, or of all instances together.
    const rss = () => serverPids.reduce((sum, pid) => sum + Proc.rssBytes(pid), 0)
    await sleep(1000)
    const rssBefore = rss()
    const connected = await Promise.all(
      loadgens.map((lg, g) =>
        lg.request(
          multi
            ? {
              type: "connect",
              wsUrl,
              pairs: shares[g]!,
              trainerWsUrls: trainerShares[g]!,
              transport: settings.transport,
              offlineRecipients: settings.offlineRecipients
            }
            : { type: "connect", wsUrl, pairs: shares[g]!, transport: settings.transport, offlineRecipients: settings.offlineRecipients },
          "connected"
        )
      )
    )
    const sockets = connected.reduce((n, c) => n + c.sockets, 0)
    log(`${sockets} sockets open and joined in ${(Math.max(...connected.map((c) => c.ms)) / 1000).toFixed(1)} s`)
    if (multi) {
      log(
        `senders (${pairs.length} user sockets) on instance A ${servers[0]!.url}; receivers (${pairs.length} trainer sockets) on ${
          servers.slice(1).map((s, i) => `instance ${instanceName(i + 1)} ${s.url} (${pairs.filter((_, p) => trainerInstance(p) === i + 1).length})`).join(", ")
        }`
      )
    }
    await sleep(2000)
    const rssJoined = rss()

    let idleOpened = 0
    let rssIdle = Number.NaN
    if (settings.idleSockets > 0) {
      const perGen = loadgens.map((_, g) => Math.floor(settings.idleSockets / loadgens.length) + (g < settings.idleSockets % loadgens.length ? 1 : 0))
      const opened = await Promise.all(
        loadgens.map((lg, g) => lg.request({ type: "openIdle", wsUrl, token: idle.token, count: perGen[g]!, transport: settings.transport }, "idleOpened"))
      )
      idleOpened = opened.reduce((n, o) => n + o.opened, 0)
      const failed = opened.reduce((n, o) => n + o.failed, 0)
      if (failed > 0) log(`${failed} idle sockets failed to open, e.g. ${opened.find((o) => o.firstError)?.firstError}`)
      await sleep(3000)
      rssIdle = rss()
      await Promise.all(loadgens.map((lg) => lg.request({ type: "closeIdle" }, "idleClosed")))
      log(`${idleOpened} idle sockets opened and closed again`)
    }
    const memory = {
      before: rssBefore,
      joined: rssJoined,
      withIdle: rssIdle,
      sockets,
      idle: idleOpened,
      perConnection: (rssIdle - rssBefore) / (sockets + idleOpened),
      perIdle: (rssIdle - rssJoined) / idleOpened,
      perJoined: (rssJoined - rssBefore) / sockets
    }
    log(
      `${multi ? `RSS of the ${settings.instances} servers together` : "server RSS"}: ${mb(memory.before)} before sockets, ${mb(memory.joined)} with ${sockets} joined, ${
        mb(memory.withIdle)
      } with ${idleOpened} idle more: ${kb(memory.perConnection)} per connection (${kb(memory.perIdle)} per idle one)`
    )

    // Other work on the machine (tests, builds, another bench) competes for the same cores.
    // Before each run: wait (at most waitQuiet) until everything else uses less than a quarter of a core.
    const own = [...serverPids, ...loadgens.map((lg) => lg.pid)]
    const waitForQuiet = async () => {
      let background = await Proc.busyExcept(1000, own)
      const quietDeadline = Date.now() + settings.waitQuiet * 1000
      while (background > 25 && Date.now() < quietDeadline) {
        log(`other processes use ${f0(background)}% of a core: waiting for them (--wait-quiet=${settings.waitQuiet})`)
        await sleep(2000)
        background = await Proc.busyExcept(1000, own)
      }
      return background
    }

    // ---- runs
    const tag = Crypto.randomBytes(3).toString("hex")
    let runNo = 0
    let totalAcked = 0
    const storedCount = async () => (await db.query<{ n: number }>("SELECT count(*)::int AS n FROM messages"))[0]!.n

    const measure = async (kind: RunResult["kind"], offered: number, seconds: number): Promise<RunResult> => {
      runNo++
      const background = await waitForQuiet()
      if (background > 25) log(`measuring anyway with ${f0(background)}% of a core used by other processes`)
      const pushesBefore = pushFake?.arrivals.length ?? 0
      const eventsBefore = webhookFake?.arrivals.length ?? 0
      const runStartedAt = performance.now()
      const cpu = multi
        ? Proc.measureCpu(serverPids, loadgens.map((lg) => lg.pid), { redis: true })
        : Proc.measureCpu(server.pid, loadgens.map((lg) => lg.pid))
      const reports: Array<RunReport> = await Promise.all(loadgens.map((lg, generator) =>
        lg.request({
          type: "run",
          runNo,
          rate: offered / loadgens.length,
          seconds,
          drainSeconds: settings.drainSeconds,
          tag,
          generator,
          contentBytes: settings.contentBytes
        }, "result")
      ))
      const split = cpu()
      if (pushFake !== undefined) {
        const during = pushFake.arrivals.slice(pushesBefore).filter((t) => t - runStartedAt <= seconds * 1000 + 1000)
        log(
          `pushes: ${pushFake.arrivals.length - pushesBefore} since the run began, ${during.length} within its ${seconds} s (+1 s): ${
            f0(during.length / seconds)
          } pushes/s`
        )
      }
      if (webhookFake !== undefined) {
        const during = webhookFake.arrivals.slice(eventsBefore).filter((t) => t - runStartedAt <= seconds * 1000 + 1000)
        log(
          `webhook events: ${webhookFake.arrivals.length - eventsBefore} since the run began, ${during.length} within its ${seconds} s (+1 s): ${
            f0(during.length / seconds)
          } events/s`
        )
      }
      const sum = (f: (r: RunReport) => number) => reports.reduce((n, r) => n + f(r), 0)
      const errors: Record<string, number> = {}
      for (const r of reports) for (const [code, n] of Object.entries(r.errors)) errors[code] = (errors[code] ?? 0) + n
      const unanswered = sum((r) => r.unanswered)
      // Sends still in flight when the drain gave up may yet commit: let the count settle.
      if (unanswered > 0) {
        let previous = -1
        for (let i = 0; i < 40; i++) {
          const n = await storedCount()
          if (n === previous) break
          previous = n
          await sleep(250)
        }
      }
      const prefix = `${tag}-${runNo}-`
      const [row] = await db.query<{ n: number; d: number }>(
        `SELECT count(*)::int AS n, count(DISTINCT client_message_id)::int AS d
           FROM messages WHERE left(client_message_id, $2) = $1`,
        [prefix, prefix.length]
      )
      const acked = sum((r) => r.acked)
      totalAcked += acked
      const stored = row!.n
      const startUs = Math.min(...reports.map((r) => r.startUs))
      const lastAckUs = Math.max(...reports.map((r) => r.lastAckUs))
      const endUs = Math.max(...reports.map((r) => r.endUs))
      const duplicated = sum((r) => r.duplicated)
      const result: RunResult = {
        kind,
        runNo,
        offered,
        seconds,
        scheduled: sum((r) => r.scheduled),
        sent: sum((r) => r.sent),
        acked,
        errors,
        unanswered,
        badAcks: sum((r) => r.badAcks),
        undelivered: sum((r) => r.undelivered),
        duplicated,
        misdelivered: sum((r) => r.misdelivered),
        echoes: sum((r) => r.echoes),
        closedSockets: sum((r) => r.closedSockets),
        stored,
        storedDistinct: row!.d,
        achieved: stored / Math.max((lastAckUs - startUs) / 1e6, seconds),
        unacked: sum((r) => r.scheduled) - acked,
        lost: Math.max(0, sum((r) => r.scheduled) - row!.d) + sum((r) => r.undelivered),
        duplicates: duplicated + (stored - row!.d) + Math.max(0, stored - acked - unanswered),
        ack: latencyOf(reports.map((r) => r.ackHistogram)),
        delivery: latencyOf(reports.map((r) => r.deliveryHistogram)),
        lag: latencyOf(reports.map((r) => r.lagHistogram)),
        cpu: split,
        serverUsPerMessage: split.serverUs / stored,
        postgresUsPerMessage: split.postgresUs / stored,
        redisUsPerMessage: multi ? split.redisUs / stored : Number.NaN,
        window: { fromUs: startUs, toUs: endUs }
      }
      totalAcked += Math.max(0, stored - acked) // stored after the drain gave up: in the final count too
      log(
        `${kind} ${f0(offered)}/s × ${seconds} s: achieved ${f0(result.achieved)}/s; ack p50 ${ms(result.ack.p50)} p99 ${
          ms(result.ack.p99)
        } p99.9 ${ms(result.ack.p999)} max ${ms(result.ack.max)} ms; ${multi ? "cross-instance " : ""}delivery p50 ${ms(result.delivery.p50)} p99 ${
          ms(result.delivery.p99)
        } p99.9 ${ms(result.delivery.p999)} ms; sent ${result.sent}/${result.scheduled}, acked ${acked}, stored ${stored} (${
          row!.d
        } distinct), unanswered ${unanswered}, undelivered ${result.undelivered}, dup ${duplicated}, misdelivered ${result.misdelivered}, errors ${
          errorsText(errors)
        }, closed sockets ${result.closedSockets}; server${multi ? "s" : ""} ${f0(result.serverUsPerMessage)} CPU-µs/msg (${f0(split.server)}% core${
          multi
            ? `: ${split.servers.map((pct, i) => `${instanceName(i)} ${f0(pct)}%`).join(", ")}), Redis ${f0(result.redisUsPerMessage)} µs/msg (${
              f0(split.redis)
            }%`
            : ""
        }), PG ${
          f0(result.postgresUsPerMessage)
        } µs/msg (${f0(split.postgres)}%), loadgen ${f0(split.loadgen)}%, other ${f0(split.other + split.bench)}% (irq ${f0(split.irq)}%, steal ${
          f0(split.steal)
        }%${split.busiestOthers.length > 0 ? `, ${split.busiestOthers.join(", ")}` : ""}), idle ${f0(split.idle)}%; generator lag p99 ${
          ms(result.lag.p99)
        } ms`
      )
      return result
    }

    if (settings.warmupSeconds > 0) {
      const warmRate = Math.min(1000, settings.rates[0] ?? 1000)
      log(`warm-up: ${f0(warmRate)} msgs/s for ${settings.warmupSeconds} s`)
      await measure("warm-up", warmRate, settings.warmupSeconds)
    }
    // A run during which other processes took more than `noisyPercent` of a core is done again (`retries` times at most).
    let repeated = 0
    const measured = async (kind: RunResult["kind"], offered: number, seconds: number) => {
      for (let attempt = 0;; attempt++) {
        const r = await measure(kind, offered, seconds)
        if (r.cpu.other <= settings.noisyPercent || attempt >= settings.retries) return r
        repeated++
        log(`other processes took ${f0(r.cpu.other)}% of a core during that run: running it again`)
      }
    }
    // Each fixed run is measured at its rate's steady state: the step up to it (the heap and the tables
    // growing, plans and caches warming) is a warm-up of its own, not shown.
    let warmedAt = Math.min(1000, settings.rates[0] ?? 1000)
    const fixed: Array<RunResult> = []
    for (const rate of settings.rates) {
      if (settings.warmupSeconds > 0 && rate > warmedAt) {
        log(`warm-up: ${f0(rate)} msgs/s for ${settings.warmupSeconds} s`)
        await measure("warm-up", rate, settings.warmupSeconds)
      }
      warmedAt = Math.max(warmedAt, rate)
      fixed.push(await measured("fixed", rate, settings.seconds))
    }
    const search: Array<RunResult> = []
    let capacity: number | undefined
    for (const rate of settings.searchRates) {
      const r = await measured("search", rate, settings.searchSeconds)
      search.push(r)
      if (!passes(r, settings.searchMaxP99Ms)) break
      capacity = rate
    }

    // ---- integrity of the whole log
    let previous = -1
    for (let i = 0; i < 40; i++) {
      const n = await storedCount()
      if (n === previous) break
      previous = n
      await sleep(250)
    }
    const [integrity] = await db.query<{ messages: number; conversations: number; seq_bad: number; unread_bad: number }>(
      `WITH per AS (
         SELECT c.id, c.last_seq, c.user_unread, c.trainer_unread,
                count(m.id)::int AS n, coalesce(min(m.seq), 0) AS lo, coalesce(max(m.seq), 0) AS hi,
                count(DISTINCT m.seq)::int AS distinct_seqs,
                count(m.id) FILTER (WHERE NOT m.is_read AND m.receiver_id = c.user_id)::int AS user_unread_rows,
                count(m.id) FILTER (WHERE NOT m.is_read AND m.receiver_id = c.trainer_id)::int AS trainer_unread_rows
           FROM conversations c LEFT JOIN messages m ON m.conversation_id = c.id
          GROUP BY c.id)
       SELECT (SELECT count(*)::int FROM messages) AS messages,
              count(*)::int AS conversations,
              count(*) FILTER (WHERE n <> last_seq OR hi <> last_seq OR distinct_seqs <> n OR (n > 0 AND lo <> 1))::int AS seq_bad,
              count(*) FILTER (WHERE user_unread <> user_unread_rows OR trainer_unread <> trainer_unread_rows)::int AS unread_bad
         FROM per`
    )
    const log_ok = integrity!.messages === totalAcked && integrity!.seq_bad === 0 && integrity!.unread_bad === 0
    log(
      `integrity: ${integrity!.messages} messages stored, ${totalAcked} acked (+ stored after the drain); ${
        integrity!.conversations
      } conversations, ${integrity!.seq_bad} with a seq gap or duplicate, ${integrity!.unread_bad} with wrong unread counters`
    )

    // ---- stop the server (writes the CPU profile) and summarise
    await stopServer()
    const profiles: Array<string> = []
    for (const [instance, profileDir] of profileDirs.entries()) {
      const file = (await Fs.promises.readdir(profileDir)).find((f) => f.endsWith(".cpuprofile"))
      if (file === undefined) {
        log(`no .cpuprofile was written${multi ? ` by instance ${instanceName(instance)}` : ""}`)
      } else {
        // Kept outside the repository (they are large): open them in Chrome DevTools or speedscope.
        const kept = Path.join(
          Os.tmpdir(),
          "bench-ws-profiles",
          `${new Date().toISOString().replace(/[:.]/g, "-")}${multi ? `-${instanceName(instance)}` : ""}.cpuprofile`
        )
        await Fs.promises.mkdir(Path.dirname(kept), { recursive: true })
        await Fs.promises.copyFile(Path.join(profileDir, file), kept)
        log(`CPU profile kept at ${kept}`)
        const profile = Profile.load(kept)
        for (const r of [...fixed, ...search]) {
          const summary = Profile.summarize(profile, r.window, 25)
          profiles.push(
            Profile.toMarkdown(
              `Server ${multi ? `instance ${instanceName(instance)} ` : ""}CPU profile: ${r.kind} ${f0(r.offered)} msgs/s`,
              summary
            )
          )
        }
      }
    }

    // ---- report
    const at5000 = fixed.find((r) => r.offered === 5000)
    const failedStep = search.length > 0 && !passes(search.at(-1)!, settings.searchMaxP99Ms)
      ? ` (${f0(search.at(-1)!.offered)} failed: ack p99 ${ms(search.at(-1)!.ack.p99)} ms, unacked ${search.at(-1)!.unacked}, lost ${search.at(-1)!.lost}, achieved ${
        f0(search.at(-1)!.achieved)
      }/s)`
      : ""
    // Several instances: the single-instance capacity compared with, given or from bench/RESULTS.md.
    const single = !multi
      ? undefined
      : settings.singleCapacity !== undefined
      ? { capacity: settings.singleCapacity, source: "--single-capacity" }
      : (() => {
        const found = Fs.existsSync(resultsFile) ? singleInstanceCapacity(Fs.readFileSync(resultsFile, "utf8")) : undefined
        return found === undefined ? undefined : { capacity: found.capacity, source: `bench/RESULTS.md, section "${found.section}"` }
      })()
    const cross5000 = fixed.find((r) => r.offered === 5000) ?? search.find((r) => r.offered === 5000)
    const multiTargets = [
      cross5000 === undefined
        ? "- cross-instance delivery p99 ≤ 50 ms at 5,000 msgs/s: not run (no fixed run or search step at 5,000/s)"
        : `- cross-instance delivery p99 ≤ 50 ms at 5,000 msgs/s, nothing lost or duplicated: **${
          cross5000.delivery.p99 <= 50 && cross5000.unacked === 0 && cross5000.lost === 0 && cross5000.duplicates === 0 ? "met" : "missed"
        }** (${cross5000.kind} run: cross-instance delivery p99 ${ms(cross5000.delivery.p99)} ms, ack p99 ${ms(cross5000.ack.p99)} ms, achieved ${
          f0(cross5000.achieved)
        }/s, unacked ${cross5000.unacked}, lost ${cross5000.lost}, duplicated ${cross5000.duplicates})`,
      settings.searchRates.length === 0
        ? "- capacity within 25% of the single-instance capacity: no search run"
        : single === undefined
        ? `- capacity within 25% of the single-instance capacity: no single-instance capacity to compare with (--single-capacity); capacity here ${
          capacity === undefined ? "none: no step passed" : `${f0(capacity)} msgs/s`
        }${failedStep}`
        : `- capacity within 25% of the single-instance capacity (≥ ${f0(0.75 * single.capacity)} msgs/s = 75% of ${
          f0(single.capacity)
        } msgs/s from ${single.source}; highest offered rate with ack p99 < ${settings.searchMaxP99Ms} ms, everything acked and delivered once): **${
          (capacity ?? 0) >= 0.75 * single.capacity ? "met" : "missed"
        }**: ${capacity === undefined ? "no step passed" : `${f0(capacity)} msgs/s (${f0((100 * capacity) / single.capacity)}% of single-instance)`}${failedStep}`
    ]
    const targets = multi ? multiTargets : [
      at5000 === undefined
        ? "- 5,000 msgs/s with nothing lost or duplicated and ack p99 ≤ 25 ms: not run"
        : `- 5,000 msgs/s with nothing lost or duplicated and ack p99 ≤ 25 ms: **${
          at5000.unacked === 0 && at5000.lost === 0 && at5000.duplicates === 0 && at5000.ack.p99 <= 25 ? "met" : "missed"
        }** (achieved ${f0(at5000.achieved)}/s, unacked ${at5000.unacked}, lost ${at5000.lost}, duplicated ${at5000.duplicates}, ack p99 ${ms(at5000.ack.p99)} ms)`,
      settings.searchRates.length === 0
        ? "- capacity ≥ 10,000 msgs/s: no search run"
        : `- capacity ≥ 10,000 msgs/s (highest offered rate with ack p99 < ${settings.searchMaxP99Ms} ms, everything acked and delivered once): **${
          (capacity ?? 0) >= 10_000 ? "met" : "missed"
        }**: ${capacity === undefined ? "no step passed" : `${f0(capacity)} msgs/s`}${
          search.length > 0 && !passes(search.at(-1)!, settings.searchMaxP99Ms)
            ? ` (${f0(search.at(-1)!.offered)} failed: ack p99 ${ms(search.at(-1)!.ack.p99)} ms, unacked ${search.at(-1)!.unacked}, lost ${search.at(-1)!.lost}, achieved ${
              f0(search.at(-1)!.achieved)
            }/s)`
            : ""
        }`
    ]
    const notes: Array<string> = []
    const all = [...fixed, ...search]
    if (repeated > 0) notes.push(`- ${repeated} run(s) were repeated because other processes were busy during them.`)
    const noisy = all.filter((r) => r.cpu.other > settings.noisyPercent)
    if (noisy.length > 0) {
      notes.push(
        `- "other" CPU (not the server${multi ? "s, Redis" : ""}, Postgres or the load generator) was high: ${
          noisy.map((r) =>
            `${r.kind} ${f0(r.offered)}/s ${f0(r.cpu.other)}% (irq+softirq ${f0(r.cpu.irq)}%, steal ${f0(r.cpu.steal)}%${
              r.cpu.busiestOthers.length > 0 ? `; ${r.cpu.busiestOthers.join(", ")}` : ""
            })`
          ).join("; ")
        }.`
      )
    }
    const lagging = all.filter((r) => r.lag.p99 > 5)
    if (lagging.length > 0) {
      notes.push(
        `- The load generator fell behind its schedule (lag p99 > 5 ms) at ${
          lagging.map((r) => `${f0(r.offered)}/s (${ms(r.lag.p99)} ms)`).join(", ")
        }: that lag counts in the latencies (they start at the scheduled time), so the box, not only the server, is saturated there.`
      )
    }
    const closed = all.filter((r) => r.closedSockets > 0)
    if (closed.length > 0) notes.push(`- Sockets closed during ${closed.map((r) => `${f0(r.offered)}/s (${r.closedSockets})`).join(", ")}.`)

    if (multi && all.length > 0 && all.every((r) => r.cpu.redis === 0)) {
      notes.push("- No `redis-server` process used CPU on this machine during the runs (Redis elsewhere?): its CPU is not in the figures.")
    }

    const pgLine = pgSettings.map((s) => `${s.name}=${s.setting}`).join(", ")
    const receivers = servers.slice(1).map((_, i) => instanceName(i + 1)).join(", ")
    const section = [
      `## WebSocket gateway${settings.transport === "socketio" ? " — Socket.IO door (socket.io-client, websocket transport)" : ""}${
        multi ? ` — ${settings.instances} instances over Redis (senders on A, receivers on ${receivers}: every delivery crosses instances)` : ""
      } — ${new Date().toISOString().replace(/\.\d+Z$/, "Z")}`,
      ...(multi
        ? [
          "",
          `- mode: **${settings.instances} server instances** sharing one Postgres database and one Redis (\`REDIS_URL=${
            redactUrl(settings.redisUrl)
          }\`, a fresh \`REDIS_PREFIX=${redisPrefix}\`, its keys deleted afterwards) and one JWT_SECRET, each on its own port; every user socket (the sender) on instance A, every trainer socket (the receiver) on ${
            settings.instances === 2 ? "instance B" : `instances ${receivers} (in turn)`
          }, so every newMessage reaches its socket through Redis pub/sub: **delivery here is cross-instance delivery**. REST setup went to instance A.`
        ]
        : []),
      "",
      `- machine: ${Os.availableParallelism()} CPUs (\`nproc\`), ${Os.cpus()[0]?.model.trim() ?? "?"}, ${
        (Os.totalmem() / 2 ** 30).toFixed(0)
      } GiB RAM; Node ${process.version}; PostgreSQL ${pgVersion} (${pgLine}) on the same machine`,
      `- code: ${
        sourceCommit !== undefined
          ? `${sourceRef} = ${sourceCommit} (built apart from the working tree)`
          : `${gitCommit}${gitDirty ? " with uncommitted changes in src/" : ""}`
      }`,
      `- command: \`${commandLine()}\``,
      `- server: ${multi ? `${settings.instances} × ` : ""}\`${server.command}\`, NODE_ENV=production, LOG_LEVEL=Warn, DB_POOL_MAX=${
        settings.dbPoolMax ?? "20 (default)"
      }, WS_SEND_PER_SECOND/WS_SEND_BURST=1e6, SEND_RATE_LIMIT=1e9, WS_MAX_SOCKETS_PER_USER=1e6${
        Object.keys(settings.serverEnv).length > 0
          ? `, ${Object.entries(settings.serverEnv).map(([k, v]) => `${k}=${v}`).join(" ")}`
          : ""
      }${multi ? " (per instance)" : ""}${settings.cpuProf ? "; **profiled** (--cpu-prof slows it down)" : ""}`,
      `- load: ${settings.pairs} user–trainer pairs (${sockets} sockets, each joined to its conversation), ${settings.loadgens} load generator process(es); open loop at the offered rate over the user sockets, ${settings.contentBytes}-character messages; ack = scheduled send → ack, delivery = scheduled send → newMessage at the trainer's socket (HdrHistogram); fixed runs ${settings.seconds} s, search steps ${settings.searchSeconds} s, ${settings.warmupSeconds} s warm-up not shown (before the first run, and at its own rate before each fixed run at a higher rate than the last); drain ≤ ${settings.drainSeconds} s`,
      `- achieved = rows stored by the run / (first scheduled send → last ack); unacked = no ack within the drain (errors included); lost = never stored + acked but never delivered; dup = extra deliveries + extra rows; CPU-µs/msg = /proc utime+stime over the run (incl. drain) / rows stored${
        multi
          ? `; server CPU-µs/msg is summed over the ${settings.instances} server processes, Redis CPU is the \`redis-server\` process(es) on this machine`
          : ""
      }`,
      "",
      ...(multi ? multiRunTable(all, settings.searchMaxP99Ms, settings.instances) : runTable(all, settings.searchMaxP99Ms)),
      ...(multi && all.length > 0
        ? [
          "",
          `**Cross-instance delivery p99** (sent on A, delivered through Redis on ${receivers}): ${
            all.map((r) => `${r.kind} ${f0(r.offered)}/s: ${ms(r.delivery.p99)} ms`).join("; ")
          }.`
        ]
        : []),
      "",
      `Memory: ${multi ? `RSS of the ${settings.instances} servers together` : "server RSS"} ${mb(memory.before)} before any socket, ${mb(memory.joined)} with the ${sockets} joined sockets, ${
        mb(memory.withIdle)
      } with ${idleOpened} idle ones more: **${kb(memory.perConnection)} per connection** overall (${kb(memory.perIdle)} per idle socket, ${
        kb(memory.perJoined)
      } per joined one; RSS differences include garbage not yet collected).`,
      "",
      `Integrity: ${integrity!.messages.toLocaleString("en-US")} messages stored = ${totalAcked.toLocaleString("en-US")} acked: ${
        integrity!.messages === totalAcked ? "yes" : "**no**"
      }; ${integrity!.conversations} conversations, ${integrity!.seq_bad} with a seq gap or duplicate, ${integrity!.unread_bad} with unread counters off: **${
        log_ok ? "ok" : "FAILED"
      }**.`,
      "",
      multi
        ? `Targets of the ${settings.instances}-instance mode (this box runs the ${settings.instances} servers, Redis, Postgres and the load generator together):`
        : "Targets (this box runs the server, Postgres and the load generator together):",
      "",
      ...targets,
      ...(notes.length > 0 ? ["", ...notes] : []),
      ...(profiles.length > 0 ? ["", ...profiles] : []),
      ""
    ].join("\n")

    console.log(`\n${section}`)
    if (settings.record) {
      const exists = Fs.existsSync(resultsFile)
      await Fs.promises.appendFile(resultsFile, `${exists ? "" : resultsHeader}\n${section}`)
      log(`appended to ${Path.relative(root, resultsFile)}`)
    }
    if (!log_ok) process.exitCode = 1
  } catch (error) {
    failed = true
    throw error
  } finally {
    await cleanup()
  }
}

main().catch((error: unknown) => {
  console.error(error)
  process.exitCode = 1
})
