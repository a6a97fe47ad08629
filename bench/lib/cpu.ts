import * as Os from "node:os"
import * as Proc from "./proc.js"

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

const sample = (serverPid: number): Sample | undefined => {
  const machine = Proc.machineTicks()
  if (machine.total === 0) return undefined
  return {
    ...machine,
    server: Proc.processTicks(serverPid),
    postgres: Proc.postgresTicks(),
    bench: Proc.processTicks("self")
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
    const machine = Proc.machineTicks()
    return machine.total === 0 ? undefined : { total: machine.total, idle: machine.idle, self: Proc.processTicks("self") }
  }
  const before = read()
  await new Promise((resolve) => setTimeout(resolve, ms))
  const after = read()
  if (before === undefined || after === undefined || after.total <= before.total) return undefined
  const scale = (100 * Os.availableParallelism()) / (after.total - before.total)
  return (after.total - before.total - (after.idle - before.idle) - (after.self - before.self)) * scale
}
