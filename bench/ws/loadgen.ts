/**
 * A load generator process of the WebSocket bench (started by bench/ws.ts with `fork`, commands over IPC).
 *
 * It holds one socket per participant of its pairs, each joined to its conversation, and on `run` sends
 * at a fixed offered rate (open loop): message i is due at start + i / rate whatever happened before,
 * and its latencies are measured from that scheduled time, so a stalled server (or generator) shows up
 * in the figures instead of silently slowing the load (no coordinated omission).
 */
import * as hdr from "hdr-histogram-js"
import { performance } from "node:perf_hooks"
import { io as ioClient, type Socket as IoSocket } from "socket.io-client"
import WebSocket from "ws"
import { pool } from "../lib/rest.js"
import type { Pair, Reply, Request, RunCommand, RunReport } from "./ipc.js"

const reply = (message: Reply) => {
  process.send?.(message)
}
const hrUs = () => Number(process.hrtime.bigint() / 1000n)

// A sender whose parent is gone has nothing left to do.
process.on("disconnect", () => process.exit(0))

interface Frame {
  readonly event: string
  readonly data?: any
  readonly id?: string
}

/**
 * A Socket.IO connection in the shape the generator uses of a WebSocket (`--transport socketio`): frames of
 * the native protocol go out as events (with a callback when they have an id), and events and answers come
 * back as native frames to `onFrame`.
 */
class IoConn {
  onFrame: (frame: Frame) => void = () => undefined
  constructor(readonly socket: IoSocket) {
    socket.onAny((event: string, data: unknown) => this.onFrame({ event, data }))
  }
  get readyState() {
    return this.socket.connected ? WebSocket.OPEN : WebSocket.CLOSED
  }
  /** Sends an event; with an id, its answer comes back as the native `ack` or `error` frame with that id. */
  emit(event: string, data: unknown, id?: string) {
    if (id === undefined) return void this.socket.emit(event, data)
    this.socket.emit(event, data, (answer: { error?: unknown } | undefined) =>
      this.onFrame(answer?.error !== undefined ? { event: "error", id, data: answer.error } : { event: "ack", id, data: answer }))
  }
  send(text: string) {
    const frame = JSON.parse(text) as Frame
    this.emit(frame.event, frame.data, frame.id)
  }
  close() {
    this.socket.disconnect()
  }
  terminate() {
    this.socket.disconnect()
  }
}

type Conn = WebSocket | IoConn

let transport: "ws" | "socketio" = "ws"

const openIo = (base: string, token: string) =>
  new Promise<IoConn>((resolve, reject) => {
    const socket = ioClient(base, { path: "/socket.io/", transports: ["websocket"], auth: { token }, reconnection: false, forceNew: true, timeout: 20_000 })
    socket.once("connect", () => resolve(new IoConn(socket)))
    socket.once("connect_error", (error: Error & { data?: unknown }) => {
      socket.close()
      reject(new Error(`connect_error: ${error.message} ${JSON.stringify(error.data ?? null)}`))
    })
  })

/** Opens a socket (a Socket.IO connection with `--transport socketio`) with a bearer token. */
const open = (base: string, token: string): Promise<Conn> => transport === "socketio" ? openIo(base, token) : openWs(`${base}/ws`, token)

/** Opens a socket on /ws with a bearer token; rejects with the HTTP answer when the upgrade is refused. */
const openWs = (url: string, token: string) =>
  new Promise<WebSocket>((resolve, reject) => {
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` }, perMessageDeflate: false })
    ws.once("open", () => resolve(ws))
    ws.once("unexpected-response", (_request, response) => {
      let body = ""
      response.on("data", (chunk: Buffer) => (body += chunk.toString()))
      response.on("end", () => reject(new Error(`upgrade refused: ${response.statusCode} ${body.slice(0, 200)}`)))
    })
    ws.once("error", reject)
  })

const histogram = () =>
  hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: 3 })

// ------------------------------------------------------------------------------------------- state

let pairs: ReadonlyArray<Pair> = []
let userSockets: Array<Conn> = []
let trainerSockets: Array<Conn> = []
/** The trainers opened no socket: nothing is delivered, only acks are waited for. */
let offlineRecipients = false
let idle: Array<Conn> = []
let closedSockets = 0

/** Replies to the frames with an id sent outside runs (joins). */
const waiters = new Map<string, (frame: Frame) => void>()

interface Run {
  readonly command: RunCommand
  readonly n: number
  readonly intervalMs: number
  readonly startMs: number
  readonly idPrefix: string
  readonly cmidPrefix: string
  readonly ackAt: Float64Array
  readonly delivered: Uint8Array
  readonly errored: Uint8Array
  readonly errors: Record<string, number>
  readonly seenIds: Set<string>
  readonly ack: ReturnType<typeof histogram>
  readonly delivery: ReturnType<typeof histogram>
  readonly lag: ReturnType<typeof histogram>
  sent: number
  acked: number
  answered: number
  firstDeliveries: number
  badAcks: number
  duplicated: number
  misdelivered: number
  echoes: number
  lastAckMs: number
}

let current: Run | undefined

const record = (h: ReturnType<typeof histogram>, ms: number) => h.recordValue(Math.max(1, Math.round(ms * 1000)))

/** The index of a run's frame id `<runNo>.<i>`, or -1. */
const indexOf = (value: string | undefined, prefix: string) =>
  value !== undefined && value.startsWith(prefix) ? Number(value.slice(prefix.length)) : -1

const onRaw = (pairIndex: number, side: "user" | "trainer", raw: WebSocket.RawData) => {
  let frame: Frame
  try {
    frame = JSON.parse(raw.toString()) as Frame
  } catch {
    return
  }
  onFrame(pairIndex, side, frame)
}

const onFrame = (pairIndex: number, side: "user" | "trainer", frame: Frame) => {
  const now = performance.now()
  const run = current
  if (frame.id !== undefined) {
    const waiter = waiters.get(frame.id)
    if (waiter !== undefined) {
      waiters.delete(frame.id)
      return waiter(frame)
    }
    if (run === undefined) return
    const i = indexOf(frame.id, run.idPrefix)
    if (!(i >= 0 && i < run.n)) return
    if (frame.event === "ack") {
      if (run.ackAt[i] !== 0 || run.errored[i] !== 0) return
      run.ackAt[i] = now
      run.acked++
      run.answered++
      run.lastAckMs = now
      if (frame.data?.message?.clientMessageId !== `${run.cmidPrefix}${i}`) run.badAcks++
      record(run.ack, now - (run.startMs + i * run.intervalMs))
    } else if (frame.event === "error") {
      if (run.ackAt[i] !== 0 || run.errored[i] !== 0) return
      run.errored[i] = 1
      run.answered++
      const code = String(frame.data?.code ?? "unknown")
      run.errors[code] = (run.errors[code] ?? 0) + 1
    }
    return
  }
  if (frame.event === "error" && run !== undefined) {
    const code = `${String(frame.data?.code ?? "unknown")} (no id)`
    run.errors[code] = (run.errors[code] ?? 0) + 1
    return
  }
  if (frame.event !== "newMessage" || run === undefined) return
  const message = frame.data as { id?: string; conversationId?: string; clientMessageId?: string | null }
  const i = indexOf(message.clientMessageId ?? undefined, run.cmidPrefix)
  if (!(i >= 0 && i < run.n)) return // not this run's (a late one of an earlier run)
  if (side === "user") {
    run.echoes++
    return
  }
  const pair = pairs[pairIndex]!
  if (i % pairs.length !== pairIndex || message.conversationId !== pair.conversationId) {
    run.misdelivered++
    return
  }
  const id = String(message.id)
  const again = run.seenIds.has(id)
  run.seenIds.add(id)
  if (run.delivered[i]! > 0 || again) {
    run.duplicated++
    if (run.delivered[i]! < 255) run.delivered[i]!++
    return
  }
  run.delivered[i] = 1
  run.firstDeliveries++
  record(run.delivery, now - (run.startMs + i * run.intervalMs))
}

const watch = (ws: Conn, pairIndex: number, side: "user" | "trainer") => {
  if (ws instanceof IoConn) {
    ws.onFrame = (frame) => onFrame(pairIndex, side, frame)
    ws.socket.on("disconnect", () => closedSockets++)
    return
  }
  ws.on("message", (data) => onRaw(pairIndex, side, data))
  ws.on("close", () => closedSockets++)
  ws.on("error", () => undefined)
}

const request = (ws: Conn, event: string, data: unknown, id: string, timeoutMs = 15_000) =>
  new Promise<Frame>((resolve, reject) => {
    const timer = setTimeout(() => {
      waiters.delete(id)
      reject(new Error(`no reply to ${event} ${id} within ${timeoutMs} ms`))
    }, timeoutMs)
    waiters.set(id, (frame) => {
      clearTimeout(timer)
      resolve(frame)
    })
    ws.send(JSON.stringify({ event, data, id }))
  })

// ------------------------------------------------------------------------------------------ commands

const connect = async (
  wsUrl: string,
  given: ReadonlyArray<Pair>,
  trainerWsUrls: ReadonlyArray<string> | undefined,
  offline: boolean
) => {
  const t = performance.now()
  pairs = given
  offlineRecipients = offline
  userSockets = await pool(pairs, 32, (p) => open(wsUrl, p.userToken))
  trainerSockets = offline
    ? []
    : await pool(pairs, 32, (p, i) => open(trainerWsUrls === undefined ? wsUrl : trainerWsUrls[i]!, p.trainerToken))
  userSockets.forEach((ws, i) => watch(ws, i, "user"))
  trainerSockets.forEach((ws, i) => watch(ws, i, "trainer"))
  const joins = pairs.flatMap((p, i) => [
    { ws: userSockets[i]!, conversationId: p.conversationId, id: `ju${i}` },
    ...(offline ? [] : [{ ws: trainerSockets[i]!, conversationId: p.conversationId, id: `jt${i}` }])
  ])
  await pool(joins, 32, async ({ conversationId, id, ws }) => {
    const frame = await request(ws, "joinConversation", { conversationId }, id)
    if (frame.event !== "ack" || frame.data?.joined !== true) {
      throw new Error(`joinConversation ${conversationId}: ${JSON.stringify(frame).slice(0, 300)}`)
    }
  })
  closedSockets = 0
  reply({ type: "connected", sockets: userSockets.length + trainerSockets.length, ms: performance.now() - t })
}

const openIdle = async (wsUrl: string, token: string, count: number) => {
  let failed = 0
  let firstError: string | undefined
  const opened = await pool(Array.from({ length: count }, (_, i) => i), 64, (_, i) =>
    open(wsUrl, token).then(
      (ws) => {
        if (!(ws instanceof IoConn)) ws.on("error", () => undefined)
        return ws
      },
      (error: unknown) => {
        failed++
        firstError ??= `socket ${i}: ${String(error)}`
        return undefined
      }
    ))
  idle = opened.filter((ws): ws is Conn => ws !== undefined)
  reply({ type: "idleOpened", opened: idle.length, failed, ...(firstError === undefined ? {} : { firstError }) })
}

const closeIdle = async () => {
  await Promise.all(idle.map((ws) =>
    ws instanceof IoConn ? ws.close() : new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        ws.terminate()
        resolve()
      }, 5000)
      ws.once("close", () => {
        clearTimeout(timer)
        resolve()
      })
      ws.close(1000, "bench done")
    })
  ))
  idle = []
  reply({ type: "idleClosed" })
}

const filler = " The quick brown fox jumps over the lazy dog while the trainer reviews today's workout plan."

const run = async (command: RunCommand) => {
  const n = Math.max(1, Math.round(command.rate * command.seconds))
  const intervalMs = 1000 / command.rate
  const cmidPrefix = `${command.tag}-${command.runNo}-${command.generator}.`
  let content = ""
  while (content.length < command.contentBytes) content += filler
  // Each message's content starts with its clientMessageId; the rest is padding to contentBytes.
  const padding = (cmid: string) => JSON.stringify(`${cmid}${content}`.slice(0, command.contentBytes))
  const conversationIds = pairs.map((p) => JSON.stringify(p.conversationId))
  const closedBefore = closedSockets

  // Sockets and timers settle first: the schedule starts a little ahead.
  const startMs = performance.now() + 50
  const startUs = hrUs() + 50_000
  const state: Run = {
    command,
    n,
    intervalMs,
    startMs,
    idPrefix: `${command.runNo}.`,
    cmidPrefix,
    ackAt: new Float64Array(n),
    delivered: new Uint8Array(n),
    errored: new Uint8Array(n),
    errors: {},
    seenIds: new Set(),
    ack: histogram(),
    delivery: histogram(),
    lag: histogram(),
    sent: 0,
    acked: 0,
    answered: 0,
    firstDeliveries: 0,
    badAcks: 0,
    duplicated: 0,
    misdelivered: 0,
    echoes: 0,
    lastAckMs: startMs
  }
  current = state

  const send = (i: number, now: number) => {
    const p = i % pairs.length
    const ws = userSockets[p]!
    if (ws.readyState !== WebSocket.OPEN) return
    const cmid = `${cmidPrefix}${i}`
    if (ws instanceof IoConn) {
      ws.emit("sendMessage", {
        conversationId: pairs[p]!.conversationId,
        content: `${cmid}${content}`.slice(0, command.contentBytes),
        clientMessageId: cmid
      }, `${state.idPrefix}${i}`)
    } else ws.send(
      `{"event":"sendMessage","id":"${state.idPrefix}${i}","data":{"conversationId":${conversationIds[p]},"content":${
        padding(cmid)
      },"clientMessageId":"${cmid}"}}`
    )
    state.sent++
    record(state.lag, now - (startMs + i * intervalMs))
  }

  // The schedule: every tick sends whatever has fallen due (timers fire at best every ~1 ms).
  await new Promise<void>((resolve) => {
    let next = 0
    const tick = () => {
      const now = performance.now()
      const due = Math.min(n, Math.floor((now - startMs) / intervalMs) + 1)
      while (next < due) send(next++, now)
      if (next >= n) return resolve()
      setTimeout(tick, Math.max(0, startMs + next * intervalMs - performance.now()))
    }
    setTimeout(tick, Math.max(0, startMs - performance.now()))
  })

  // Drain: what was sent is answered and delivered, or the time is up.
  const deadline = performance.now() + command.drainSeconds * 1000
  while (performance.now() < deadline) {
    if (state.answered >= state.sent && (offlineRecipients || state.firstDeliveries >= state.acked)) break
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  current = undefined

  let undelivered = 0
  if (!offlineRecipients) for (let i = 0; i < n; i++) if (state.ackAt[i] !== 0 && state.delivered[i] === 0) undelivered++
  const report: RunReport = {
    runNo: command.runNo,
    scheduled: n,
    sent: state.sent,
    acked: state.acked,
    errors: state.errors,
    unanswered: n - state.answered,
    badAcks: state.badAcks,
    undelivered,
    duplicated: state.duplicated,
    misdelivered: state.misdelivered,
    echoes: state.echoes,
    closedSockets: closedSockets - closedBefore,
    ackHistogram: hdr.encodeIntoCompressedBase64(state.ack),
    deliveryHistogram: hdr.encodeIntoCompressedBase64(state.delivery),
    lagHistogram: hdr.encodeIntoCompressedBase64(state.lag),
    startUs,
    endUs: startUs + Math.round((n - 1) * intervalMs * 1000),
    lastAckUs: startUs + Math.round((state.lastAckMs - startMs) * 1000)
  }
  reply({ type: "result", ...report })
}

process.on("message", (request: Request) => {
  const handle = async () => {
    switch (request.type) {
      case "connect":
        transport = request.transport ?? "ws"
        return connect(request.wsUrl, request.pairs, request.trainerWsUrls, request.offlineRecipients === true)
      case "openIdle":
        transport = request.transport ?? "ws"
        return openIdle(request.wsUrl, request.token, request.count)
      case "closeIdle":
        return closeIdle()
      case "run":
        return run(request)
      case "exit":
        for (const ws of [...userSockets, ...trainerSockets, ...idle]) ws.terminate()
        process.exit(0)
    }
  }
  handle().catch((error: unknown) =>
    reply({ type: "failed", message: error instanceof Error ? error.stack ?? error.message : String(error) })
  )
})
