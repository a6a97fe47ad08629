/**
 * HTTP benchmark of the chat's hot paths against a real server process on a throwaway Postgres database.
 *
 *   npm run bench:http [-- --duration=10 --scenarios=send,page ...]     (npm run bench:http -- --help)
 *
 * 1. Creates `bench_http_<random>` on BENCH_DATABASE_URL's server (dropped at the end, also on failure),
 *    copies the working tree's src/ (or a git ref's) to a temporary directory, builds it there and starts
 *    `node dist/src/main.js` on the database (production settings, a free port).
 * 2. Over the API: the admin creates trainers and users, assigns them, every user logs in and opens the
 *    conversation with their trainer.
 * 3. Scenarios (autocannon, in this process; the server is a separate process):
 *    - send:      POST /chat/messages, closed loop (N connections, each sends when answered)
 *    - page:      GET /chat/conversations/:id/messages?limit=50 at a fixed rate (open loop)
 *    - send-rate: POST /chat/messages at a fixed rate (open loop)
 *    After the sends, the database is checked: one message per 201 (plus requests answered after the
 *    load stopped), every conversation's seqs exactly 1..last_seq, unread counters equal to the rows.
 * 4. Prints a markdown summary and appends it to bench/RESULTS.md.
 */
import type autocannon from "autocannon"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { setTimeout as sleep } from "node:timers/promises"
import { fileURLToPath } from "node:url"
import { parseSettings, type ScenarioName, type Settings, usage } from "./lib/config.js"
import * as Cpu from "./lib/cpu.js"
import * as Database from "./lib/db.js"
import { type LoadRequest, type LoadResult, runLoad, summarize } from "./lib/load.js"
import * as Profile from "./lib/profile.js"
import * as Server from "./lib/server.js"
import { call, expectStatus, pool } from "./lib/rest.js"
import { makeCleanups } from "./lib/cleanup.js"

const root = Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "..")
const resultsFile = Path.join(root, "bench", "RESULTS.md")
const started = Date.now()
const log = (message: string) => console.log(`[bench ${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s] ${message}`)
const hrUs = () => Number(process.hrtime.bigint() / 1000n)

// -------------------------------------------------------------------------------------------- setup

interface Session {
  readonly userId: string
  readonly token: string
  readonly trainerId: string
  readonly conversationId: string
}

const password = "bench-password-1"

const setup = async (base: string, admin: { email: string; password: string }, settings: Settings) => {
  const adminToken = expectStatus(await call(base, "POST", "/auth/login", { body: admin }), 200, "admin login").accessToken
  const create = (role: "trainer" | "user", i: number) =>
    call(base, "POST", "/users", {
      token: adminToken,
      body: { email: `${role}${i}@bench.local`, password, firstName: `${role}${i}`, lastName: "Bench", role }
    }).then((r) => expectStatus(r, 201, `create ${role} ${i}`).id as string)

  let t = Date.now()
  const trainers = await pool(Array.from({ length: settings.trainers }, (_, i) => i), settings.setupConcurrency, (i) =>
    create("trainer", i))
  const users = await pool(Array.from({ length: settings.users }, (_, i) => i), settings.setupConcurrency, (i) =>
    create("user", i))
  log(`created ${trainers.length} trainers and ${users.length} users in ${((Date.now() - t) / 1000).toFixed(1)} s`)

  t = Date.now()
  const sessions = await pool(users, settings.setupConcurrency, async (userId, i): Promise<Session> => {
    const trainerId = trainers[i % trainers.length]!
    expectStatus(
      await call(base, "POST", `/users/${userId}/assign-trainer/${trainerId}`, { token: adminToken }),
      200,
      "assign trainer"
    )
    const token = expectStatus(
      await call(base, "POST", "/auth/login", { body: { email: `user${i}@bench.local`, password } }),
      200,
      "user login"
    ).accessToken as string
    const conversationId = expectStatus(
      await call(base, "POST", "/chat/conversations", { token, body: { participantId: trainerId } }),
      201,
      "open conversation"
    ).id as string
    return { userId, token, trainerId, conversationId }
  })
  log(`assigned, logged in and opened ${sessions.length} conversations in ${((Date.now() - t) / 1000).toFixed(1)} s`)
  return sessions
}

// ------------------------------------------------------------------------------------------- sending

/** What the bench knows about sends: 201s seen, and requests written but not (yet) answered. */
interface Ledger {
  created: number
  duplicates: number
  pending: Set<string>
}

const runTag = Crypto.randomBytes(3).toString("hex")
let sendCounter = 0
const filler = "The quick brown fox jumps over the lazy dog while the trainer reviews today's workout plan. "
const nextMessage = () => {
  const clientMessageId = `${runTag}-${(sendCounter++).toString(36)}`
  return { clientMessageId, content: `${clientMessageId} ${filler}`.slice(0, 100) }
}

const pick = <A>(items: ReadonlyArray<A>) => items[Math.floor(Math.random() * items.length)]!

const sendRequest = (sessions: ReadonlyArray<Session>, ledger: Ledger): LoadRequest => ({
  method: "POST",
  setup: (request: autocannon.Request, context) => {
    const session = pick(sessions)
    const { clientMessageId, content } = nextMessage()
    context.id = clientMessageId
    ledger.pending.add(clientMessageId)
    request.path = "/chat/messages"
    request.headers = { "content-type": "application/json", authorization: `Bearer ${session.token}` }
    request.body = JSON.stringify({ conversationId: session.conversationId, content, clientMessageId })
    return request
  },
  onResponse: (status, _body, context) => {
    ledger.pending.delete(context.id as string)
    if (status === 201) ledger.created++
    else if (status === 200) ledger.duplicates++
  }
})

/** Sends over fetch until every conversation holds at least `atLeast` messages. */
const topUp = async (base: string, db: Database.Db, sessions: ReadonlyArray<Session>, ledger: Ledger, atLeast: number) => {
  const rows = await db.query<{ id: string; last_seq: number }>("SELECT id, last_seq FROM conversations")
  const seqs = new Map(rows.map((r) => [r.id, Number(r.last_seq)]))
  const short = sessions.filter((s) => (seqs.get(s.conversationId) ?? 0) < atLeast)
  if (short.length === 0) return 0
  let sent = 0
  await pool(short, 16, async (s) => {
    for (let n = seqs.get(s.conversationId) ?? 0; n < atLeast; n++) {
      const { clientMessageId, content } = nextMessage()
      const reply = await call(base, "POST", "/chat/messages", {
        token: s.token,
        body: { conversationId: s.conversationId, content, clientMessageId }
      })
      expectStatus(reply, 201, "top-up send")
      ledger.created++
      sent++
    }
  })
  return sent
}

// ----------------------------------------------------------------------------------------- integrity

interface Integrity {
  readonly label: string
  readonly messages: number
  readonly created: number
  readonly duplicates: number
  readonly unanswered: number
  readonly unansweredStored: number
  readonly conversations: number
  readonly seqBad: number
  readonly unreadBad: number
  readonly ok: boolean
}

const checkIntegrity = async (db: Database.Db, ledger: Ledger, label: string): Promise<Integrity> => {
  // Requests the load generator stopped waiting for may still be running: wait for the count to settle.
  let previous = -1
  for (let i = 0; i < 40; i++) {
    const [row] = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM messages")
    if (row!.n === previous) break
    previous = row!.n
    await sleep(250)
  }
  const [totals] = await db.query<{ messages: number; stored: number }>(
    `SELECT (SELECT count(*)::int FROM messages) AS messages,
            (SELECT count(*)::int FROM messages WHERE client_message_id = ANY($1::text[])) AS stored`,
    [[...ledger.pending]]
  )
  const [seqs] = await db.query<{ conversations: number; seq_bad: number; unread_bad: number }>(
    `WITH per AS (
       SELECT c.id, c.last_seq, c.user_unread, c.trainer_unread,
              count(m.id)::int AS n, coalesce(min(m.seq), 0) AS lo, coalesce(max(m.seq), 0) AS hi,
              count(DISTINCT m.seq)::int AS distinct_seqs,
              count(m.id) FILTER (WHERE NOT m.is_read AND m.receiver_id = c.user_id)::int AS user_unread_rows,
              count(m.id) FILTER (WHERE NOT m.is_read AND m.receiver_id = c.trainer_id)::int AS trainer_unread_rows
         FROM conversations c LEFT JOIN messages m ON m.conversation_id = c.id
        GROUP BY c.id)
     SELECT count(*)::int AS conversations,
            count(*) FILTER (WHERE n <> last_seq OR hi <> last_seq OR distinct_seqs <> n OR (n > 0 AND lo <> 1))::int AS seq_bad,
            count(*) FILTER (WHERE user_unread <> user_unread_rows OR trainer_unread <> trainer_unread_rows)::int AS unread_bad
       FROM per`
  )
  const result: Integrity = {
    label,
    messages: totals!.messages,
    created: ledger.created,
    duplicates: ledger.duplicates,
    unanswered: ledger.pending.size,
    unansweredStored: totals!.stored,
    conversations: seqs!.conversations,
    seqBad: seqs!.seq_bad,
    unreadBad: seqs!.unread_bad,
    ok: totals!.messages === ledger.created + totals!.stored && seqs!.seq_bad === 0 && seqs!.unread_bad === 0 &&
      ledger.duplicates === 0
  }
  // From here on, what was stored is known: the next check starts from it.
  ledger.created += totals!.stored
  ledger.pending.clear()
  return result
}

// ----------------------------------------------------------------------------------------- scenarios

interface ScenarioRun {
  readonly name: ScenarioName
  readonly description: string
  readonly load: LoadResult
  readonly cpu: Cpu.CpuSplit | undefined
  readonly walBytesPerOk: number
  /** Database transactions (statements, outside transactions) per response, all statuses. */
  readonly xactsPerResponse: number
  readonly window: { readonly fromUs: number; readonly toUs: number }
  readonly target?: { readonly text: string; readonly met: boolean }
  readonly note?: string
}

/** Waits (when asked) for the database's statistics to be published: backends do it within 10 s of going idle. */
const statsSettled = () => sleep(11_000)

const measured = async (
  name: ScenarioName,
  description: string,
  options: {
    readonly db: Database.Db
    readonly serverPid: () => number
    readonly settle: number
    readonly dbStats: boolean
    /** Runs just before the load (after the statistics settled): waits for the machine to be quiet. */
    readonly prepare: () => Promise<void>
  },
  run: () => Promise<LoadResult>
) => {
  const { db } = options
  if (options.dbStats) await statsSettled()
  await options.prepare()
  const before = await Database.counters(db)
  const cpu = Cpu.measure(options.serverPid())
  const fromUs = hrUs() + options.settle * 1e6
  const load = await run()
  const toUs = hrUs()
  const split = cpu()
  const walAfter = await Database.counters(db)
  const wal = await Database.walBytesBetween(db, before.walLsn, walAfter.walLsn)
  const ok = Object.entries(load.statuses).reduce((n, [s, c]) => (s.startsWith("2") ? n + c : n), 0)
  let xactsPerResponse = Number.NaN
  if (options.dbStats) {
    await statsSettled()
    const after = await Database.counters(db)
    // Less this connection's own two counters queries.
    const xacts = after.xactCommit + after.xactRollback - before.xactCommit - before.xactRollback - 2
    if (load.responses > 0) xactsPerResponse = xacts / load.responses
  }
  return {
    name,
    description,
    load,
    cpu: split,
    walBytesPerOk: ok > 0 ? wal / ok : Number.NaN,
    xactsPerResponse,
    window: { fromUs, toUs }
  }
}

// -------------------------------------------------------------------------------------------- probe

interface Probe {
  readonly requests: number
  readonly latency: ReturnType<typeof summarize>
  readonly perRequest: {
    readonly xacts: number
    readonly inserted: number
    readonly updated: number
    readonly fetched: number
    readonly blocks: number
    readonly walBytes: number
  }
}

/**
 * On an otherwise idle server, `n` requests one after another: their latency unloaded, and what each
 * costs the database, from pg_stat_database (one transaction per statement outside transactions).
 * Backends publish their counters at most every second and idle ones within 10 s: hence the waits.
 */
const probe = async (db: Database.Db, n: number, one: (i: number) => Promise<void>): Promise<Probe> => {
  const before = await Database.counters(db)
  const latencies: Array<number> = []
  for (let i = 0; i < n; i++) {
    const t = performance.now()
    await one(i)
    latencies.push(performance.now() - t)
  }
  await sleep(11_000)
  const after = await Database.counters(db)
  const wal = await Database.walBytesBetween(db, before.walLsn, after.walLsn)
  // Less this connection's own counters query.
  const per = (a: number, b: number, own = 0) => (a - b - own) / n
  return {
    requests: n,
    latency: summarize(latencies),
    perRequest: {
      xacts: per(after.xactCommit + after.xactRollback, before.xactCommit + before.xactRollback, 1),
      inserted: per(after.tupInserted, before.tupInserted),
      updated: per(after.tupUpdated, before.tupUpdated),
      fetched: per(after.tupFetched, before.tupFetched),
      blocks: per(after.blksHit + after.blksRead, before.blksHit + before.blksRead),
      walBytes: wal / n
    }
  }
}

// ------------------------------------------------------------------------------------------ report

const f0 = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString("en-US") : "–")
const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : "–")
const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : "–")
const ms = (x: number) => (Number.isFinite(x) ? (x < 10 ? x.toFixed(2) : x.toFixed(1)) : "–")

const scenarioTable = (runs: ReadonlyArray<ScenarioRun>) => [
  "| scenario | load | conns | achieved 2xx/s | p50 ms | p90 ms | p99 ms | max ms | non-2xx | errors (timeouts) | target | met |",
  "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
  ...runs.map((r) => {
    const l = r.load
    const lat = l.window.latency
    return `| ${r.name} | ${r.description} | ${l.connections} | ${f0(l.window.okRate)} | ${ms(lat.p50)} | ${ms(lat.p90)} | ${
      ms(lat.p99)
    } | ${ms(lat.max)} | ${f0(l.non2xx)} | ${f0(l.errors)} (${f0(l.timeouts)}) | ${r.target?.text ?? "—"} | ${
      r.target === undefined ? "—" : r.target.met ? "yes" : "**no**"
    } |`
  })
]

const cpuTable = (runs: ReadonlyArray<ScenarioRun>) => {
  const withCpu = runs.filter((r) => r.cpu !== undefined)
  if (withCpu.length === 0) return []
  const capacity = withCpu[0]!.cpu!.capacity
  return [
    "",
    `CPU during each scenario, in % of one core (the machine has ${capacity}); WAL is cluster-wide:`,
    "",
    "| scenario | server | postgres | load generator | irq/softirq | steal | other processes | idle | server CPU ms per 2xx | DB transactions per response | WAL bytes per 2xx |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ...withCpu.map((r) => {
      const c = r.cpu!
      const ok = r.load.window.okRate
      return `| ${r.name} | ${f0(c.server)} | ${f0(c.postgres)} | ${f0(c.bench)} | ${f0(c.irq)} | ${f0(c.steal)} | ${f0(c.other)} | ${
        f0(c.idle)
      } | ${
        ok > 0 ? (c.server / 100 / ok * 1000).toFixed(2) : "–"
      } | ${f2(r.xactsPerResponse)} | ${f0(r.walBytesPerOk)} |`
    })
  ]
}

const integrityLines = (checks: ReadonlyArray<Integrity>) =>
  checks.map((c) =>
    `- integrity after ${c.label}: ${c.ok ? "OK" : "**FAILED**"} — ${f0(c.messages)} messages stored = ${f0(c.created)} answered 201${
      c.unanswered > 0 ? ` + ${f0(c.unansweredStored)} of ${f0(c.unanswered)} requests cut off when the load stopped` : ""
    }${c.duplicates > 0 ? `; ${c.duplicates} unexpected 200 (duplicate)` : ""}; seqs exactly 1..last_seq in ${
      c.conversations - c.seqBad
    }/${c.conversations} conversations; unread counters match the rows in ${c.conversations - c.unreadBad}/${c.conversations}`
  )

const probeLines = (probes: ReadonlyArray<readonly [string, Probe]>) =>
  probes.length === 0 ? [] : [
    "",
    "Unloaded, one request at a time (database work per request from pg_stat_database; one transaction = one statement round trip here):",
    "",
    "| request | n | p50 ms | p99 ms | transactions | rows inserted | rows updated | rows fetched | buffer pages | WAL bytes |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ...probes.map(([name, p]) =>
      `| ${name} | ${p.requests} | ${ms(p.latency.p50)} | ${ms(p.latency.p99)} | ${f1(p.perRequest.xacts)} | ${
        f1(p.perRequest.inserted)
      } | ${f1(p.perRequest.updated)} | ${f1(p.perRequest.fetched)} | ${f1(p.perRequest.blocks)} | ${f0(p.perRequest.walBytes)} |`
    )
  ]

const resultsHeader = `# Benchmarks

## How to run \`npm run bench:http\`

\`npm run bench:http\` (bench/http.ts) measures the chat's REST hot paths against a real server process. It
creates a throwaway database \`bench_http_<random>\` on \`BENCH_DATABASE_URL\` (default
\`postgres://postgres@127.0.0.1:5432/postgres\`; dropped at the end, also on failure), copies the working tree's
\`src/\` (or \`--source=<git ref>\`'s) to a temporary directory, builds it there and starts \`node dist/src/main.js\`
with production settings (NODE_ENV=production, LOG_LEVEL=Warn, random JWT_SECRET, login and per-user send
limits lifted) on a free port, creates 20 trainers and 200 users over the API (each assigned, signed in, its
conversation opened, 8 requests at a time), then runs autocannon in the bench process:

- **send**: \`POST /chat/messages\` closed loop, 50 connections, 20 s, a random user's conversation per request;
- **page**: \`GET /chat/conversations/:id/messages?limit=50\` at 1,000 req/s (every conversation holds ≥ 50 messages);
- **send-rate**: \`POST /chat/messages\` at 3,000 req/s.

Targets (from the issue): ≥ 3,000 sends/s with p99 < 50 ms; 50-message page p99 < 10 ms at 1,000 req/s.
Rates and latencies are those of the 2xx responses that arrived after the first 2 s of each scenario.
Fixed-rate scenarios are open loop: each connection sends one request per second at its own offset
(autocannon's own \`overallRate\` fires every connection's share at once, once a second).
After the sends the database is checked: messages = 201s (plus requests cut off when the load stopped that
the server still stored), seqs exactly 1..last_seq in every conversation, unread counters equal to the rows.
Each section also gives where the CPU went (server, Postgres, load generator, kernel, other processes),
database transactions per response (pg_stat_database), and unloaded one-at-a-time latencies. If the
server dies, the section says so and the run goes on with a new server process on the same database.

Options: \`npm run bench:http -- --help\` (\`--duration=10\`, \`--scenarios=send,page\`, \`--source=HEAD\`,
\`--cpu-prof\` with \`npx tsx bench/profile.ts bench/profiles/<run> --scenario send\` to dig further, …); each
is also read from \`BENCH_<NAME>\`. Every run appends a section below. The machine's 2 cores are shared by the
load generator, the server, Postgres and anything else running (other people's tests): the bench waits for
other processes to go quiet before each scenario, and reports what they used during it.
`

// --------------------------------------------------------------------------------------------- main

/** The error line and the first frames of a crash, from the server's last lines. */
const crashSummary = (tail: ReadonlyArray<string>) => {
  const at = tail.findIndex((line) => /^\w*Error\b|Error:/.test(line.trim()))
  if (at < 0) return tail.filter((l) => l.trim() !== "").slice(-3).join(" / ")
  const frames = tail.slice(at + 1).filter((l) => l.trim().startsWith("at ")).slice(0, 5)
    .map((l) => l.trim().replace(/\(file:\/\/|\(/, "(").replace(/[^( ]*node_modules\//, ""))
  return [tail[at]!.trim(), ...frames].join(" ")
}

const main = async () => {
  const parsed = parseSettings(process.argv.slice(2), process.env)
  if (parsed === "help") {
    console.log(usage)
    return
  }
  const settings = parsed
  if (settings.settle >= settings.duration) throw new Error("--settle must be shorter than --duration")

  const { cleanups, cleanup } = makeCleanups(log)

  try {
    const gitCommit = await Server.run("git", ["rev-parse", "--short", "HEAD"], root).then((s) => s.trim()).catch(() => "?")
    const gitDirty = await Server.run("git", ["status", "--porcelain", "--", "src"], root).then((s) => s.trim() !== "")
      .catch(() => false)

    const database = await Database.createDatabase(settings.databaseUrl)
    cleanups.push(async () => {
      await database.drop()
      log(`dropped database ${database.name}`)
    })
    log(`created database ${database.name}`)
    const postgresVersion = await database.version()

    const tmp = await Fs.promises.mkdtemp(Path.join(Os.tmpdir(), "bench-http-"))
    cleanups.push(() => Fs.promises.rm(tmp, { recursive: true, force: true }))

    // The app runs from a private copy: edits and builds by others in the repository meanwhile change nothing.
    let appRoot = root
    let measuredSource = `working tree at ${gitCommit}${gitDirty ? " with uncommitted changes in src/" : ""}`
    if (settings.build || settings.server === "tsx") {
      if (settings.source !== "worktree") {
        const commit = (await Server.run("git", ["rev-parse", "--short", settings.source], root)).trim()
        measuredSource = `${settings.source} = ${commit}`
      }
      log(`copying ${settings.source === "worktree" ? "the working tree" : settings.source}${
        settings.server === "dist" ? " and building it (tsc -p tsconfig.build.json)" : ""
      }`)
      appRoot = await Server.prepareApp({
        root,
        dir: Path.join(tmp, "app"),
        source: settings.source,
        compile: settings.server === "dist"
      })
    } else {
      measuredSource = `the repository's dist/ as built before the run (working tree at ${gitCommit})`
    }
    const profileDir = settings.cpuProf
      ? Path.join(root, "bench", "profiles", new Date().toISOString().replace(/[:.]/g, "-"))
      : undefined
    if (profileDir !== undefined) await Fs.promises.mkdir(profileDir, { recursive: true })

    // ---------------------------------------------------------------------------------- server
    const admin = { email: "admin@bench.local", password: Crypto.randomBytes(12).toString("hex") }
    const jwtSecret = Crypto.randomBytes(32).toString("hex")
    const crashes: Array<{ readonly after: string; readonly summary: string }> = []
    let crashTail: ReadonlyArray<string> = []
    let starts = 0
    const startServer = async () => {
      const port = await Server.freePort()
      const started = await Server.start({
        root: appRoot,
        mode: settings.server,
        env: {
          NODE_ENV: "production",
          LOG_LEVEL: "Warn",
          HOST: "127.0.0.1",
          PORT: String(port),
          DATABASE_URL: database.url,
          DATA_DIR: Path.join(tmp, "data"),
          JWT_SECRET: jwtSecret,
          JWT_TTL: "1 day",
          ADMIN_EMAIL: admin.email,
          ADMIN_PASSWORD: admin.password,
          AUTH_RATE_LIMIT_PER_IP: "1000000",
          AUTH_RATE_LIMIT_PER_EMAIL: "1000000",
          // The per-user send limit (60 per 10 s by default) would answer most sends 429 at 3,000/s over 200 users.
          SEND_RATE_LIMIT: "1000000",
          ...(settings.dbPoolMax === undefined ? {} : { DB_POOL_MAX: String(settings.dbPoolMax) }),
          ...settings.serverEnv
        },
        port,
        logFile: Path.join(tmp, `server-${++starts}.log`),
        onUnexpectedExit: (exit, tail) => {
          log(`the server exited unexpectedly (${exit.code ?? exit.signal}); its last lines:`)
          for (const line of tail) console.log(`  | ${line.slice(0, 600)}`)
          crashTail = tail
        },
        ...(profileDir === undefined ? {} : { cpuProfDir: profileDir })
      })
      log(`server ready at ${started.url} (pid ${started.pid}): ${started.command}`)
      return started
    }
    let server = await startServer()
    let serverLogLines = 0
    let serverLogTail: ReadonlyArray<string> = []
    const stopServer = async () => {
      const current = server
      if (!current.running()) return
      serverLogLines += current.logLines()
      serverLogTail = current.logTail()
      const exit = await current.stop()
      log(`server stopped (${exit.code ?? exit.signal})`)
      if (exit.code !== 0) for (const line of current.logTail().slice(-10)) log(`  server: ${line.slice(0, 400)}`)
    }
    cleanups.push(stopServer)
    /** After a load: if the server died (it has when thousands of requests were cut off), note it and start another. */
    const ensureServer = async (after: string) => {
      for (let i = 0; i < 6 && server.running(); i++) await sleep(250)
      if (server.running()) {
        const health = await call(server.url, "GET", "/health").catch(() => undefined)
        if (health?.status === 200) return
        await sleep(2000)
        if (server.running()) throw new Error(`the server is running but does not answer /health after ${after}`)
      }
      serverLogLines += server.logLines()
      const summary = crashSummary(crashTail)
      crashes.push({ after, summary })
      log(`the server crashed after ${after}: ${summary}`)
      log("starting it again on the same database")
      server = await startServer()
    }

    const db = await Database.connect(database.url)
    cleanups.push(() => db.close())

    const setupStarted = Date.now()
    const sessions = await setup(server.url, admin, settings)
    const setupSeconds = (Date.now() - setupStarted) / 1000

    const ledger: Ledger = { created: 0, duplicates: 0, pending: new Set() }
    const runs: Array<ScenarioRun> = []
    const checks: Array<Integrity> = []
    const notes: Array<string> = []
    const background: Array<readonly [string, number]> = []
    const wants = (name: ScenarioName) => settings.scenarios.includes(name)

    /** Other work on the machine (tests, builds, autovacuum) competes for the same cores: let it finish. */
    const waitQuiet = async (before: string) => {
      let busy = await Cpu.busyElsewhere(2000)
      const deadline = Date.now() + settings.waitQuiet * 1000
      while (busy !== undefined && busy > 25 && Date.now() < deadline) {
        log(`other processes use ${f0(busy)}% of a core: waiting for them (--wait-quiet=${settings.waitQuiet})`)
        await sleep(3000)
        busy = await Cpu.busyElsewhere(2000)
      }
      if (busy !== undefined) {
        background.push([before, busy])
        log(`CPU used by other processes before ${before}: ${f0(busy)}% of a core`)
      }
    }

    if (settings.warmup > 0) {
      await waitQuiet("warm-up")
      log(`warm-up: ${settings.warmup} s of closed-loop sends`)
      const warm = await runLoad({
        url: server.url,
        connections: Math.min(settings.sendConnections, 16),
        duration: settings.warmup,
        settle: 0,
        request: sendRequest(sessions, ledger)
      })
      log(`warm-up: ${f0(warm.window.okRate)} sends/s`)
    }

    const describe = (r: ScenarioRun) => {
      const l = r.load
      log(
        `${r.name}: ${f0(l.window.okRate)} 2xx/s (${f0(l.window.rate)} responses/s) p50 ${ms(l.window.latency.p50)} ms, p90 ${
          ms(l.window.latency.p90)
        } ms, p99 ${ms(l.window.latency.p99)} ms, max ${ms(l.window.latency.max)} ms; non-2xx ${l.non2xx}, errors ${l.errors} ` +
          `(timeouts ${l.timeouts}); statuses ${JSON.stringify(l.statuses)}`
      )
      for (const [status, body] of Object.entries(l.samples)) log(`  sample ${status}: ${body}`)
      if (r.cpu !== undefined) {
        log(
          `  CPU (% of a core): server ${f0(r.cpu.server)}, postgres ${f0(r.cpu.postgres)}, load generator ${
            f0(r.cpu.bench)
          }, irq ${f0(r.cpu.irq)}, steal ${f0(r.cpu.steal)}, other processes ${f0(r.cpu.other)}, idle ${f0(r.cpu.idle)}`
        )
      }
    }

    const phase = (name: ScenarioName) => ({
      db,
      serverPid: () => server.pid,
      settle: settings.settle,
      dbStats: settings.dbStats,
      prepare: () => waitQuiet(name)
    })

    if (wants("send")) {
      const r = await measured("send", `closed loop, ${settings.duration} s`, phase("send"), () => {
        log(`send: closed loop, ${settings.sendConnections} connections, ${settings.duration} s`)
        return runLoad({
          url: server.url,
          connections: settings.sendConnections,
          duration: settings.duration,
          settle: settings.settle,
          request: sendRequest(sessions, ledger)
        })
      })
      runs.push(r)
      describe(r)
      await ensureServer("send")
      checks.push(await checkIntegrity(db, ledger, "send"))
      log(integrityLines(checks.slice(-1))[0]!)
    }

    if (wants("page")) {
      const limit = settings.pageLimit
      const sent = await topUp(server.url, db, sessions, ledger, limit)
      if (sent > 0) {
        log(`page: sent ${sent} messages first so that every conversation holds ≥ ${limit}`)
        notes.push(`page: ${f0(sent)} messages were sent first (one at a time per conversation) to reach ${limit} per conversation`)
      }
      const sample = sessions[0]!
      const check = expectStatus(
        await call(server.url, "GET", `/chat/conversations/${sample.conversationId}/messages?limit=${limit}`, {
          token: sample.token
        }),
        200,
        "history"
      )
      if (check.messages?.length !== limit) throw new Error(`history returned ${check.messages?.length} messages, not ${limit}`)
      let checked = 0
      let short = 0
      const pageRequest: LoadRequest = {
        method: "GET",
        setup: (request) => {
          const s = pick(sessions)
          request.path = `/chat/conversations/${s.conversationId}/messages?limit=${limit}`
          request.headers = { authorization: `Bearer ${s.token}` }
          return request
        },
        onResponse: (status, body) => {
          // Spot-check one answer in 50 (parsing every one would load the generator).
          if (status === 200 && Math.random() < 0.02) {
            checked++
            if ((JSON.parse(body) as { messages: Array<unknown> }).messages.length !== limit) short++
          }
        }
      }
      const r = await measured("page", `${f0(settings.pageRate)} req/s open loop, ${settings.duration} s`, phase("page"), () => {
        log(`page: ${settings.pageRate} req/s over ${settings.pageConnections} connections, ${settings.duration} s`)
        return runLoad({
          url: server.url,
          connections: settings.pageConnections,
          duration: settings.duration,
          settle: settings.settle,
          rate: settings.pageRate,
          request: pageRequest
        })
      })
      const lat = r.load.window.latency
      const run: ScenarioRun = {
        ...r,
        description: `${r.description}, limit=${limit}`,
        target: {
          text: "p99 < 10 ms at 1,000/s",
          met: settings.pageRate >= 1000 && r.load.window.okRate >= 0.98 * 1000 && lat.p99 < 10
        }
      }
      runs.push(run)
      describe(run)
      log(`  page bodies spot-checked: ${checked}, with fewer than ${limit} messages: ${short}`)
      if (short > 0) notes.push(`page: ${short} of ${checked} spot-checked answers held fewer than ${limit} messages`)
      await ensureServer("page")
    }

    if (wants("send-rate")) {
      const r = await measured(
        "send-rate",
        `${f0(settings.sendRate)} req/s open loop, ${settings.duration} s`,
        phase("send-rate"),
        () => {
          log(`send-rate: ${settings.sendRate} req/s over ${settings.sendRateConnections} connections, ${settings.duration} s`)
          return runLoad({
            url: server.url,
            connections: settings.sendRateConnections,
            duration: settings.duration,
            settle: settings.settle,
            rate: settings.sendRate,
            request: sendRequest(sessions, ledger)
          })
        }
      )
      const lat = r.load.window.latency
      const run: ScenarioRun = {
        ...r,
        target: {
          text: "≥ 3,000/s, p99 < 50 ms",
          met: r.load.window.okRate >= 0.98 * 3000 && lat.p99 < 50
        }
      }
      runs.push(run)
      describe(run)
      await ensureServer("send-rate")
      checks.push(await checkIntegrity(db, ledger, "send-rate"))
      log(integrityLines(checks.slice(-1))[0]!)
    }

    const probes: Array<readonly [string, Probe]> = []
    if (settings.probe) {
      log("probe: waiting for the database's statistics, then 500 sends and 500 pages one at a time (~35 s)")
      await sleep(11_000)
      await ensureServer(runs.at(-1)?.name ?? "setup")
      const s = sessions[0]!
      probes.push([
        "send",
        await probe(db, 500, async () => {
          const { clientMessageId, content } = nextMessage()
          expectStatus(
            await call(server.url, "POST", "/chat/messages", {
              token: s.token,
              body: { conversationId: s.conversationId, content, clientMessageId }
            }),
            201,
            "probe send"
          )
          ledger.created++
        })
      ])
      probes.push([
        `page (limit=${settings.pageLimit})`,
        await probe(db, 500, async () => {
          expectStatus(
            await call(server.url, "GET", `/chat/conversations/${s.conversationId}/messages?limit=${settings.pageLimit}`, {
              token: s.token
            }),
            200,
            "probe page"
          )
        })
      ])
      for (const [name, p] of probes) {
        log(
          `probe ${name}: p50 ${ms(p.latency.p50)} ms, p99 ${ms(p.latency.p99)} ms; per request ${f1(p.perRequest.xacts)} transactions, ${
            f1(p.perRequest.inserted)
          } inserted, ${f1(p.perRequest.updated)} updated, ${f1(p.perRequest.fetched)} fetched, ${f0(p.perRequest.walBytes)} WAL bytes`
        )
      }
    }

    const [counts] = await db.query<{ messages: number; conversations: number }>(
      "SELECT (SELECT count(*)::int FROM messages) AS messages, (SELECT count(*)::int FROM conversations) AS conversations"
    )
    await stopServer()

    // ------------------------------------------------------------------------------------ profile
    const profileSections: Array<string> = []
    if (profileDir !== undefined) {
      await Fs.promises.writeFile(
        Path.join(profileDir, "windows.json"),
        JSON.stringify(runs.map((r) => ({ name: r.name, ...r.window })), null, 2)
      )
      const files = (await Fs.promises.readdir(profileDir)).filter((f) => f.endsWith(".cpuprofile")).sort()
      if (files.length === 0) notes.push("cpu-prof: the server wrote no profile")
      const profiles = files.map((file) => ({ file, profile: Profile.load(Path.join(profileDir, file)) }))
      for (const r of runs) {
        // The profile's clock is the machine's monotonic clock, as is process.hrtime here.
        const found = profiles.find(({ profile }) => profile.startTime <= r.window.fromUs && r.window.toUs <= profile.endTime)
        if (found === undefined) {
          notes.push(`cpu-prof: no profile covers ${r.name}`)
          continue
        }
        const where = Path.relative(root, Path.join(profileDir, found.file))
        const md = Profile.toMarkdown(`Server CPU profile during ${r.name} (${where})`, Profile.summarize(found.profile, r.window))
        profileSections.push(md)
        console.log(`\n${md}`)
      }
    }

    // ------------------------------------------------------------------------------------- report
    const cpus = Os.cpus()
    const command = [
      "npm run bench:http",
      ...(process.argv.length > 2 ? ["--", ...process.argv.slice(2)] : [])
    ].join(" ")
    const envSettings = Object.entries(process.env)
      .filter(([k]) => k.startsWith("BENCH_"))
      .map(([k, v]) => `${k}=${k === "BENCH_DATABASE_URL" ? (v ?? "").replace(/\/\/[^@/]*@/, "//…@") : v}`)
    const date = new Date().toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC")
    const anyFailed = checks.some((c) => !c.ok)
    const section = [
      `## HTTP — ${date}${settings.cpuProf ? " (profiled: --cpu-prof slows the server)" : ""}`,
      "",
      `- command: \`${[...envSettings, command].join(" ")}\``,
      `- machine: nproc ${Os.availableParallelism()} (${cpus[0]?.model.trim() ?? "?"}), ${
        (Os.totalmem() / 2 ** 30).toFixed(1)
      } GiB RAM; Node ${process.version}; ${postgresVersion.replace(/ on .*/, "")}`,
      `- server: \`${server.command}\` (NODE_ENV=production, LOG_LEVEL=Warn, DB_POOL_MAX=${
        settings.dbPoolMax ?? "20 (default)"
      }${Object.entries(settings.serverEnv).map(([k, v]) => `, ${k}=${v}`).join("")}); code: ${measuredSource}`,
      `- data: ${settings.trainers} trainers, ${settings.users} users, ${counts!.conversations} conversations (setup ${
        setupSeconds.toFixed(1)
      } s); ${f0(counts!.messages)} messages at the end`,
      `- CPU used by other processes just before each phase (% of a core): ${
        background.length === 0 ? "unknown" : background.map(([phase, busy]) => `${phase} ${f0(busy)}`).join(", ")
      }; "other processes" below is during`,
      "",
      ...scenarioTable(runs),
      ...cpuTable(runs),
      "",
      ...crashes.map((c) => `- **the server crashed** after ${c.after} (when the load generator dropped its connections), and was restarted: \`${c.summary.slice(0, 600)}\``),
      ...integrityLines(checks),
      ...notes.map((n) => `- ${n}`),
      ...(serverLogLines > 0 && crashes.length === 0
        ? [`- the server logged ${serverLogLines} warning/error lines; last: \`${serverLogTail.at(-1)?.slice(0, 300)}\``]
        : []),
      ...probeLines(probes),
      ...(profileSections.length > 0 ? ["", ...profileSections] : []),
      ""
    ].join("\n")

    console.log(`\n${section}`)
    if (settings.record) {
      const exists = Fs.existsSync(resultsFile)
      await Fs.promises.appendFile(resultsFile, `${exists ? "" : resultsHeader}\n${section}`)
      log(`appended to ${Path.relative(root, resultsFile)}`)
    }
    if (anyFailed) process.exitCode = 1
  } finally {
    await cleanup()
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.stack ?? error.message : error)
  process.exitCode = 1
})
