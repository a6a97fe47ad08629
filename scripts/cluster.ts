/**
 * `npm run start:cluster -- 3`: three instances of the server on PORT,
 * PORT+1, PORT+2 (default 3000..), sharing the database and Redis from the
 * environment — the local picture of instances behind a load balancer.
 */
import { spawn } from "node:child_process"
import { randomBytes } from "node:crypto"

const count = Number(process.argv[2] ?? 2)
const base = Number(process.env.PORT ?? 3000)
if (!Number.isInteger(count) || count < 1 || count > 32) {
  console.error("usage: npm run start:cluster -- <instances 1..32>")
  process.exit(2)
}
if (!process.env.REDIS_URL && !process.env.REDIS_HOST) {
  console.error("start:cluster needs REDIS_URL (or REDIS_HOST): without Redis, instances cannot share events")
  process.exit(2)
}
if (!process.env.DATABASE_URL && !process.env.DB_HOST) {
  console.error("start:cluster needs DATABASE_URL (or DB_HOST): the embedded database belongs to one process")
  process.exit(2)
}

// Every instance must verify every other's tokens: one secret for all (generated when not given).
const jwtSecret = process.env.JWT_SECRET ?? randomBytes(32).toString("hex")

const children = Array.from({ length: count }, (_, i) => {
  const port = base + i
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
    env: { JWT_TTL: "1 day", ...process.env, PORT: String(port), JWT_SECRET: jwtSecret },
    stdio: ["ignore", "pipe", "pipe"]
  })
  const tag = `[${port}] `
  const prefix = (chunk: Buffer) => chunk.toString().replace(/^(?=.)/gm, tag)
  child.stdout.on("data", (chunk: Buffer) => process.stdout.write(prefix(chunk)))
  child.stderr.on("data", (chunk: Buffer) => process.stderr.write(prefix(chunk)))
  child.on("exit", (code, signal) => console.log(`${tag}exited (${signal ?? code})`))
  return child
})

let stopping = false
const stop = (signal: NodeJS.Signals) => {
  if (stopping) return
  stopping = true
  for (const child of children) if (child.exitCode === null) child.kill(signal)
}
process.on("SIGINT", () => stop("SIGTERM"))
process.on("SIGTERM", () => stop("SIGTERM"))
let running = children.length
for (const child of children) {
  child.on("exit", (code) => {
    running -= 1
    if (!stopping && code !== 0) stop("SIGTERM")
    if (running === 0) process.exit(stopping ? 0 : 1)
  })
}
