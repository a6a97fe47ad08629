import * as Fs from "node:fs"
import * as Os from "node:os"

/**
 * Where the machine's CPU went during a scenario, from /proc (Linux only; empty elsewhere):
 * the server process, every `postgres` process, this bench process (the load generator), the rest,
 * and idle. In "% of one core", so the machine's capacity is 100 × nproc.
 */
export interface CpuSplit {
  readonly server: number
  readonly postgres: number
  readonly bench: number
  /** Interrupt handling (loopback networking mostly), charged to no process. */
  readonly irq: number
  /** Taken by the hypervisor from this VM. */
  readonly steal: number
  /** Every other process (other people's tests and builds, system services). */
  readonly other: number
  readonly idle: number
  readonly capacity: number
}

interface Sample {
  readonly total: number
  readonly idle: number
  readonly irq: number
  readonly steal: number
  readonly server: number
  readonly postgres: number
  readonly bench: number
}

/** utime + stime of a process, in clock ticks; 0 when it is gone. */
const processTicks = (pid: number | "self"): number => {
  try {
    const stat = Fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    // After "pid (comm) ", field 3 (state) is index 0: utime is field 14, stime field 15.
    return Number(fields[11]) + Number(fields[12])
  } catch {
    return 0
  }
}

const postgresTicks = (): number => {
  let sum = 0
  for (const entry of Fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = Fs.readFileSync(`/proc/${entry}/stat`, "utf8")
      if (stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")) !== "postgres") continue
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
      sum += Number(fields[11]) + Number(fields[12])
    } catch {
      // gone meanwhile
    }
  }
  return sum
}

const sample = (serverPid: number): Sample | undefined => {
  try {
    const line = Fs.readFileSync("/proc/stat", "utf8").split("\n", 1)[0]!
    const ticks = line.trim().split(/\s+/).slice(1, 9).map(Number)
    const total = ticks.reduce((a, b) => a + b, 0)
    const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0)
    const irq = (ticks[5] ?? 0) + (ticks[6] ?? 0)
    const steal = ticks[7] ?? 0
    return { total, idle, irq, steal, server: processTicks(serverPid), postgres: postgresTicks(), bench: processTicks("self") }
  } catch {
    return undefined
  }
}

/** Starts measuring; the returned function ends the measurement. */
export const measure = (serverPid: number): (() => CpuSplit | undefined) => {
  const before = sample(serverPid)
  return () => {
    const after = sample(serverPid)
    if (before === undefined || after === undefined || after.total <= before.total) return undefined
    const cores = Os.availableParallelism()
    const scale = (100 * cores) / (after.total - before.total)
    const server = (after.server - before.server) * scale
    const postgres = (after.postgres - before.postgres) * scale
    const bench = (after.bench - before.bench) * scale
    const idle = (after.idle - before.idle) * scale
    const irq = (after.irq - before.irq) * scale
    const steal = (after.steal - before.steal) * scale
    const other = Math.max(0, 100 * cores - idle - irq - steal - server - postgres - bench)
    return { server, postgres, bench, irq, steal, other, idle, capacity: 100 * cores }
  }
}

/** CPU used by every process but this one over `ms`, in % of one core; undefined without /proc. */
export const busyElsewhere = async (ms: number): Promise<number | undefined> => {
  const read = () => {
    try {
      const line = Fs.readFileSync("/proc/stat", "utf8").split("\n", 1)[0]!
      const ticks = line.trim().split(/\s+/).slice(1, 9).map(Number)
      return { total: ticks.reduce((a, b) => a + b, 0), idle: (ticks[3] ?? 0) + (ticks[4] ?? 0), self: processTicks("self") }
    } catch {
      return undefined
    }
  }
  const before = read()
  await new Promise((resolve) => setTimeout(resolve, ms))
  const after = read()
  if (before === undefined || after === undefined || after.total <= before.total) return undefined
  const scale = (100 * Os.availableParallelism()) / (after.total - before.total)
  return (after.total - before.total - (after.idle - before.idle) - (after.self - before.self)) * scale
}
