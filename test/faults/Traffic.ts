import { SqlClient } from "@effect/sql"
import { ConfigProvider, Effect, Layer, type Scope } from "effect"
import { expect } from "vitest"
import WebSocket from "ws"
import * as SqlClientLive from "../../src/infra/sql/Client.js"
import type { Instance } from "../support/Instances.js"
import { admin } from "../support/TestApp.js"
import { uniqueEmail } from "../support/Users.js"

/** `FAULTS_SHORT=1`: the CI subset (shorter outages, fewer sockets). */
export const short = process.env.FAULTS_SHORT === "1" || process.env.FAULTS_SHORT === "true"

export interface Account {
  readonly id: string
  readonly token: string
}

export interface Pair {
  readonly conversationId: string
  readonly user: Account
  readonly trainer: Account
}

const post = async (url: string, path: string, body: unknown, token?: string) => {
  const response = await fetch(url + path, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
    body: JSON.stringify(body)
  })
  const text = await response.text()
  if (response.status >= 300) throw new Error(`POST ${path}: ${response.status} ${text.slice(0, 200)}`)
  return text === "" ? null : JSON.parse(text)
}

/** `count` trainers, each with a user assigned and their conversation opened (through REST, as a client would). */
export const pairs = (instance: Instance, count: number): Effect.Effect<ReadonlyArray<Pair>> =>
  Effect.promise(async () => {
    const url = instance.url
    const boss = await post(url, "/auth/login", admin)
    const one = async (): Promise<Pair> => {
      const password = "password-123"
      const trainerEmail = uniqueEmail("trainer")
      await post(url, "/users", { email: trainerEmail, password, firstName: "T", lastName: "T", role: "trainer" }, boss.accessToken)
      const [trainer, user] = await Promise.all([
        post(url, "/auth/login", { email: trainerEmail, password }),
        post(url, "/auth/register", { email: uniqueEmail("user"), password, firstName: "U", lastName: "U" })
      ])
      await post(url, `/users/${user.user.id}/assign-trainer/${trainer.user.id}`, {}, boss.accessToken)
      const conversation = await post(url, "/chat/conversations", { participantId: trainer.user.id }, user.accessToken)
      return {
        conversationId: conversation.id,
        user: { id: user.user.id, token: user.accessToken },
        trainer: { id: trainer.user.id, token: trainer.accessToken }
      }
    }
    const out: Array<Pair> = []
    for (let i = 0; i < count; i += 4) {
      out.push(...await Promise.all(Array.from({ length: Math.min(4, count - i) }, one)))
    }
    return out
  })

const wsUrl = (instance: Instance) => instance.url.replace(/^http/, "ws") + "/ws"

/** Counts every socket's trouble, for the scenario's figures. */
export interface Tally {
  /** When each first ack arrived (ms since epoch). */
  readonly ackTimes: Array<number>
  /** Two different messages acked for one clientMessageId. */
  duplicateAcks: number
  /** A live newMessage for a seq the socket already had. */
  duplicateDeliveries: number
  errors: Map<string, number>
  reconnects: number
  resyncs: number
  firstResyncAt: number | undefined
  /** When each socket (re)opened. */
  readonly opens: Array<number>
}

export const tally = (): Tally => ({
  ackTimes: [],
  duplicateAcks: 0,
  duplicateDeliveries: 0,
  errors: new Map(),
  reconnects: 0,
  resyncs: 0,
  firstResyncAt: undefined,
  opens: []
})

interface Pending {
  readonly content: string
  sentAt: number
  retryAt: number | undefined
}

/**
 * A client socket that reconnects (to `targets()` in turn) whenever it is closed or refused, rejoins its
 * conversation with `sinceSeq` on every (re)connect and on `resync`, and, as the sender, sends with a
 * clientMessageId and resends what was not acked (after an error, a close, or 5 s without an answer).
 */
export class Client {
  socket: WebSocket | undefined
  readonly pending = new Map<string, Pending>()
  readonly acked = new Map<string, { readonly id: string; readonly seq: number }>()
  /** Seqs this socket has of its conversation (history pages and live messages). */
  readonly seen = new Set<number>()
  private contiguous = 0
  private next = 0
  private attempt = 0
  private stopped = false
  private closed = false
  private timer: NodeJS.Timeout | undefined

  constructor(
    readonly pair: Pair,
    readonly account: Account,
    readonly targets: () => ReadonlyArray<Instance>,
    readonly counts: Tally,
    readonly label: string
  ) {}

  open(): Promise<void> {
    return new Promise((resolve) => {
      const ws = new WebSocket(wsUrl(this.targets()[this.attempt % this.targets().length]!), {
        headers: { authorization: `Bearer ${this.account.token}` }
      })
      this.socket = ws
      ws.on("open", () => {
        this.counts.opens.push(Date.now())
        this.join()
        for (const [cmid, p] of this.pending) this.write(cmid, p)
        resolve()
      })
      ws.on("message", (raw) => this.onFrame(JSON.parse(raw.toString())))
      ws.on("error", () => {})
      ws.on("close", () => {
        resolve()
        if (this.socket !== ws || this.closed) return
        this.counts.reconnects++
        this.attempt++
        setTimeout(() => void this.open(), 50 + Math.random() * 200)
      })
    })
  }

  private join() {
    this.send({ event: "joinConversation", data: { conversationId: this.pair.conversationId, sinceSeq: this.contiguous } })
  }

  private send(frame: unknown) {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(frame))
  }

  private write(cmid: string, p: Pending) {
    p.sentAt = Date.now()
    p.retryAt = undefined
    this.send({ event: "sendMessage", id: cmid, data: { conversationId: this.pair.conversationId, content: p.content, clientMessageId: cmid } })
  }

  private have(seq: number, live: boolean) {
    if (this.seen.has(seq)) {
      if (live) this.counts.duplicateDeliveries++
      return
    }
    this.seen.add(seq)
    while (this.seen.has(this.contiguous + 1)) this.contiguous++
  }

  private onFrame(frame: { event: string; id?: string; data: any }) {
    switch (frame.event) {
      case "ack": {
        if (frame.id === undefined || frame.data?.message === undefined) return
        const message = frame.data.message as { id: string; seq: number }
        const before = this.acked.get(frame.id)
        if (before !== undefined && before.id !== message.id) this.counts.duplicateAcks++
        if (before === undefined) {
          this.acked.set(frame.id, { id: message.id, seq: message.seq })
          this.counts.ackTimes.push(Date.now())
        }
        this.pending.delete(frame.id)
        return
      }
      case "error": {
        const code = String(frame.data?.code)
        this.counts.errors.set(code, (this.counts.errors.get(code) ?? 0) + 1)
        const p = frame.id === undefined ? undefined : this.pending.get(frame.id)
        if (p !== undefined) p.retryAt = Date.now() + (frame.data?.retryAfterMs ?? 200) + Math.random() * 200
        return
      }
      case "conversationHistory": {
        for (const m of frame.data.messages as Array<{ seq: number }>) this.have(m.seq, false)
        if (frame.data.hasMore) this.join()
        return
      }
      case "newMessage":
        return this.have(frame.data.seq, true)
      case "resync": {
        this.counts.resyncs++
        this.counts.firstResyncAt ??= Date.now()
        if (frame.data.lastSeq > this.contiguous) this.join()
        return
      }
    }
  }

  /** Sends a new message every `everyMs` while at most `window` wait for their ack; resends late ones. */
  run(everyMs: number, window = 10) {
    this.timer = setInterval(() => {
      const now = Date.now()
      for (const [cmid, p] of this.pending) {
        if ((p.retryAt !== undefined && now >= p.retryAt) || now - p.sentAt > 5000) this.write(cmid, p)
      }
      if (this.stopped || this.pending.size >= window) return
      const cmid = `${this.label}-${++this.next}`
      const p: Pending = { content: `${this.label} #${this.next}`, sentAt: now, retryAt: undefined }
      this.pending.set(cmid, p)
      this.write(cmid, p)
    }, everyMs)
  }

  /** Queues `count` messages, written now or as soon as the socket is open again. */
  queue(count: number) {
    for (let k = 0; k < count; k++) {
      const cmid = `${this.label}-${++this.next}`
      const p: Pending = { content: `${this.label} #${this.next}`, sentAt: Date.now(), retryAt: undefined }
      this.pending.set(cmid, p)
      this.write(cmid, p)
    }
    if (this.timer === undefined) this.run(100, 0)
  }

  /** No new messages; what is pending is still resent until acked. */
  stopSending() {
    this.stopped = true
  }

  get lastSeq() {
    return this.contiguous
  }

  close() {
    this.stopped = true
    this.closed = true
    clearInterval(this.timer)
    const ws = this.socket
    this.socket = undefined
    ws?.terminate()
  }
}

/** Clients closed with the scope. */
export const clients = (make: () => ReadonlyArray<Client>): Effect.Effect<ReadonlyArray<Client>, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const all = make()
      await Promise.all(all.map((c) => c.open()))
      return all
    }),
    (all) => Effect.sync(() => all.forEach((c) => c.close()))
  )

const waitUntil = (check: () => boolean, timeoutMs: number) =>
  Effect.promise(() =>
    new Promise<boolean>((resolve) => {
      const started = Date.now()
      const poll = () => {
        if (check()) return resolve(true)
        if (Date.now() - started > timeoutMs) return resolve(false)
        setTimeout(poll, 50)
      }
      poll()
    })
  )

interface StoredRow {
  readonly conversationId: string
  readonly id: string
  readonly seq: number
  readonly clientMessageId: string | null
}

const storedOf = (databaseUrl: string, conversationIds: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    return yield* sql<StoredRow>`
      SELECT conversation_id, id, seq, client_message_id FROM messages
      WHERE ${sql.in("conversation_id", conversationIds)} ORDER BY conversation_id, seq`
  }).pipe(
    Effect.provide(SqlClientLive.layer.pipe(
      Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["DATABASE_URL", databaseUrl]]))))
    )),
    Effect.orDie
  )

export interface Figures {
  readonly scenario: string
  readonly sent: number
  readonly acked: number
  readonly stored: number
  readonly ackedLost: number
  readonly storedUnacked: number
  readonly duplicates: number
  readonly gaps: number
  readonly recoveryMs: number | undefined
  readonly extra: string
}

/**
 * The end of a scenario: senders stop and their pending sends are resent until acked; receivers get the
 * time to reach the end of each log by themselves (what the server told them: live messages, closes,
 * resyncs; no extra catch-up is forced). Then the checks, against the database.
 */
export const settle = (
  scenario: string,
  options: {
    readonly databaseUrl: string
    readonly senders: ReadonlyArray<Client>
    readonly receivers: ReadonlyArray<Client>
    readonly counts: Tally
    /** When the fault ended (the service back, the signal sent): recovery is the first ack at or after it. */
    readonly faultEndedAt: number
    readonly extra?: (figures: Omit<Figures, "extra">) => string
  }
): Effect.Effect<Figures> =>
  Effect.gen(function*() {
    const { counts, receivers, senders } = options
    for (const s of senders) s.stopSending()
    const settling = Date.now()
    yield* waitUntil(() => senders.every((s) => s.pending.size === 0), 60_000)
    const drainMs = Date.now() - settling
    const conversationIds = [...new Set([...senders, ...receivers].map((c) => c.pair.conversationId))]
    const stored = yield* storedOf(options.databaseUrl, conversationIds)
    const lastOf = new Map<string, number>()
    for (const row of stored) lastOf.set(row.conversationId, Math.max(lastOf.get(row.conversationId) ?? 0, row.seq))
    const catchingUp = Date.now()
    yield* waitUntil(() => receivers.every((r) => r.lastSeq >= (lastOf.get(r.pair.conversationId) ?? 0)), 15_000)
    const catchUpMs = Date.now() - catchingUp

    const storedIds = new Set(stored.map((r) => r.id))
    const ackedIds = new Set(senders.flatMap((s) => [...s.acked.values()].map((a) => a.id)))
    let ackedLost = 0
    for (const id of ackedIds) if (!storedIds.has(id)) ackedLost++
    let storedUnacked = 0
    for (const row of stored) if (!ackedIds.has(row.id)) storedUnacked++
    // The same clientMessageId stored twice, two messages acked for one send, a live message delivered twice.
    const keys = new Set<string>()
    let duplicates = counts.duplicateAcks + counts.duplicateDeliveries
    for (const row of stored) {
      if (row.clientMessageId === null) continue
      const key = `${row.conversationId}/${row.clientMessageId}`
      if (keys.has(key)) duplicates++
      keys.add(key)
    }
    // Seqs of each stored log are 1..n; each receiver holds all of them.
    let gaps = 0
    const byConversation = new Map<string, Array<number>>()
    for (const row of stored) byConversation.set(row.conversationId, [...byConversation.get(row.conversationId) ?? [], row.seq])
    for (const seqs of byConversation.values()) seqs.forEach((seq, i) => seq !== i + 1 && gaps++)
    for (const r of receivers) {
      const last = lastOf.get(r.pair.conversationId) ?? 0
      for (let seq = 1; seq <= last; seq++) if (!r.seen.has(seq)) gaps++
    }
    const after = counts.ackTimes.filter((t) => t >= options.faultEndedAt)
    const recoveryMs = after.length === 0 ? undefined : Math.min(...after) - options.faultEndedAt
    const figures = {
      scenario,
      sent: senders.reduce((n, s) => n + s.acked.size + s.pending.size, 0),
      acked: ackedIds.size,
      stored: stored.length,
      ackedLost,
      storedUnacked,
      duplicates,
      gaps,
      recoveryMs
    }
    const extra = options.extra?.(figures) ?? ""
    const errors = [...counts.errors].map(([code, n]) => `${code}=${n}`).join(",") || "none"
    console.log(
      `FAULT ${scenario}${short ? " (short)" : ""}: acked=${figures.acked} stored=${figures.stored} ackedLost=${ackedLost} ` +
        `storedUnacked=${storedUnacked} duplicates=${duplicates} gaps=${gaps} recoveryMs=${recoveryMs ?? "none"} ` +
        `reconnects=${counts.reconnects} resyncs=${counts.resyncs} errors=${errors} drainMs=${drainMs} catchUpMs=${catchUpMs}${extra === "" ? "" : ` ${extra}`}`
    )
    return { ...figures, extra }
  })

/** What every scenario holds to: nothing acked is lost, nothing is doubled, no log or client has a hole, service came back. */
export const expectSound = (figures: Figures) => {
  expect(figures.ackedLost).toBe(0)
  expect(figures.duplicates).toBe(0)
  expect(figures.gaps).toBe(0)
  expect(figures.storedUnacked).toBe(0)
  expect(figures.recoveryMs).toBeDefined()
}

export const outageMs = short ? 2000 : 10_000
