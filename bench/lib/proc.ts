/** What /proc says about processes and the machine (Linux; zeros elsewhere). */
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"

/** Clock ticks per second of /proc/<pid>/stat times. */
export const ticksPerSecond = (() => {
  try {
    const n = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim())
    return Number.isFinite(n) && n > 0 ? n : 100
  } catch {
    return 100
  }
})()

/** utime + stime of a process, in clock ticks; 0 when it is gone. */
export const processTicks = (pid: number | "self"): number => {
  try {
    const stat = Fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    // After "pid (comm) ", the state is index 0: utime is field 14 of stat(5), stime field 15.
    return Number(fields[11]) + Number(fields[12])
  } catch {
    return 0
  }
}

/** Ticks of every process named `postgres` (all databases of the cluster, background workers included). */
export const postgresTicks = (): number => ticksOfProcessesNamed("postgres")

/** Ticks of every process with this name (`/proc/<pid>/stat`'s comm). */
export const ticksOfProcessesNamed = (name: string): number => {
  let sum = 0
  let entries: Array<string> = []
  try {
    entries = Fs.readdirSync("/proc")
  } catch {
    return 0
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = Fs.readFileSync(`/proc/${entry}/stat`, "utf8")
      if (stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")) !== name) continue
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
      sum += Number(fields[11]) + Number(fields[12])
    } catch {
      // gone meanwhile
    }
  }
  return sum
}

/** The machine's ticks (all CPUs): total, idle (+ iowait), and those no process is charged for. */
export const machineTicks = (): {
  readonly total: number
  readonly idle: number
  readonly irq: number
  readonly steal: number
} => {
  try {
    const line = Fs.readFileSync("/proc/stat", "utf8").split("\n", 1)[0]!
    // user nice system idle iowait irq softirq steal
    const ticks = line.trim().split(/\s+/).slice(1, 9).map(Number)
    return {
      total: ticks.reduce((a, b) => a + b, 0),
      idle: (ticks[3] ?? 0) + (ticks[4] ?? 0),
      irq: (ticks[5] ?? 0) + (ticks[6] ?? 0),
      steal: ticks[7] ?? 0
    }
  } catch {
    return { total: 0, idle: 0, irq: 0, steal: 0 }
  }
}

/** Ticks of every process by pid, with its name. */
const allProcesses = (): Map<number, { readonly comm: string; readonly ticks: number }> => {
  const result = new Map<number, { comm: string; ticks: number }>()
  let entries: Array<string> = []
  try {
    entries = Fs.readdirSync("/proc")
  } catch {
    return result
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = Fs.readFileSync(`/proc/${entry}/stat`, "utf8")
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
      result.set(Number(entry), {
        comm: stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")),
        ticks: Number(fields[11]) + Number(fields[12])
      })
    } catch {
      // gone meanwhile
    }
  }
  return result
}

/** Resident set size of a process in bytes (VmRSS), NaN when unknown. */
export const rssBytes = (pid: number): number => {
  try {
    const status = Fs.readFileSync(`/proc/${pid}/status`, "utf8")
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)
    return match === null ? Number.NaN : Number(match[1]) * 1024
  } catch {
    return Number.NaN
  }
}

/** CPU of the server, Postgres, the load generators, this process, the rest and idle, in % of one core. */
export interface CpuSplit {
  /** All server processes together. */
  readonly server: number
  /** Each server process, in the order given. */
  readonly servers: ReadonlyArray<number>
  /** `redis-server` processes (when measured apart; otherwise they are in `other`). */
  readonly redis: number
  readonly postgres: number
  readonly loadgen: number
  readonly bench: number
  readonly other: number
  readonly idle: number
  /** Of `other`: interrupts (irq + softirq, e.g. loopback networking) and time stolen by the hypervisor. */
  readonly irq: number
  readonly steal: number
  /** Of `other`: the busiest processes that are not the server, Postgres or the bench's own, "name pid: %". */
  readonly busiestOthers: ReadonlyArray<string>
  /** Server CPU time in the window (all server processes), µs. */
  readonly serverUs: number
  readonly postgresUs: number
  readonly redisUs: number
  readonly seconds: number
}

/** Name of the Redis server's processes, measured apart with `{ redis: true }`. */
const redisComm = "redis-server"

export const measureCpu = (
  serverPid: number | ReadonlyArray<number>,
  loadgenPids: ReadonlyArray<number>,
  options: { readonly redis?: boolean } = {}
): (() => CpuSplit) => {
  const serverPids = typeof serverPid === "number" ? [serverPid] : serverPid
  const withRedis = options.redis === true
  const processesBefore = allProcesses()
  const sample = () => ({
    machine: machineTicks(),
    servers: serverPids.map((pid) => processTicks(pid)),
    postgres: postgresTicks(),
    redis: withRedis ? ticksOfProcessesNamed(redisComm) : 0,
    loadgen: loadgenPids.reduce((sum, pid) => sum + processTicks(pid), 0),
    bench: processTicks("self"),
    at: performance.now()
  })
  const before = sample()
  return () => {
    const after = sample()
    const cores = Os.availableParallelism()
    const machine = after.machine.total - before.machine.total
    // /proc/stat counts all CPUs: ticks per core over the window = machine / cores.
    const scale = machine > 0 ? (100 * cores) / machine : 0
    const serverTicks = after.servers.map((t, i) => t - before.servers[i]!)
    const serverSum = serverTicks.reduce((a, b) => a + b, 0)
    const server = serverSum * scale
    const postgres = (after.postgres - before.postgres) * scale
    const redis = (after.redis - before.redis) * scale
    const loadgen = (after.loadgen - before.loadgen) * scale
    const bench = (after.bench - before.bench) * scale
    const idle = (after.machine.idle - before.machine.idle) * scale
    const own = new Set([...serverPids, process.pid, ...loadgenPids])
    const others: Array<[string, number]> = []
    for (const [pid, p] of allProcesses()) {
      if (own.has(pid) || p.comm === "postgres" || (withRedis && p.comm === redisComm)) continue
      const delta = p.ticks - (processesBefore.get(pid)?.ticks ?? 0)
      if (delta > 0) others.push([`${p.comm} ${pid}`, delta * scale])
    }
    others.sort((a, b) => b[1] - a[1])
    return {
      irq: (after.machine.irq - before.machine.irq) * scale,
      steal: (after.machine.steal - before.machine.steal) * scale,
      busiestOthers: others.slice(0, 3).filter(([, pct]) => pct >= 1).map(([name, pct]) => `${name}: ${pct.toFixed(0)}%`),
      server,
      servers: serverTicks.map((t) => t * scale),
      redis,
      postgres,
      loadgen,
      bench,
      idle,
      other: Math.max(0, 100 * cores - idle - server - postgres - redis - loadgen - bench),
      serverUs: (serverSum / ticksPerSecond) * 1e6,
      postgresUs: ((after.postgres - before.postgres) / ticksPerSecond) * 1e6,
      redisUs: ((after.redis - before.redis) / ticksPerSecond) * 1e6,
      seconds: (after.at - before.at) / 1000
    }
  }
}

/** CPU used over `ms` by every process except those given, in % of one core. */
export const busyExcept = async (ms: number, pids: ReadonlyArray<number>): Promise<number> => {
  const own = () => pids.reduce((sum, pid) => sum + processTicks(pid), processTicks("self"))
  const m0 = machineTicks()
  const o0 = own()
  await new Promise((resolve) => setTimeout(resolve, ms))
  const m1 = machineTicks()
  const o1 = own()
  const total = m1.total - m0.total
  if (total <= 0) return 0
  const busy = total - (m1.idle - m0.idle) - (o1 - o0)
  return (busy * 100 * Os.availableParallelism()) / total
}
