import autocannon from "autocannon"
import { performance } from "node:perf_hooks"

export interface LoadRequest {
  readonly method: "GET" | "POST"
  /** Fills in one request: path, headers, body. `context` lives until that request's response. */
  readonly setup: (request: autocannon.Request, context: Record<string, unknown>) => autocannon.Request
  readonly onResponse?: (status: number, body: string, context: Record<string, unknown>) => void
}

export interface LoadOptions {
  readonly url: string
  readonly connections: number
  /** Seconds. */
  readonly duration: number
  /** Seconds at the start left out of the latency and rate figures. */
  readonly settle: number
  /** Overall requests per second (open loop, see `staggered`); closed loop when absent. */
  readonly rate?: number
  readonly request: LoadRequest
}

export interface Latency {
  readonly p50: number
  readonly p90: number
  readonly p99: number
  readonly p999: number
  readonly max: number
  readonly mean: number
}

export interface LoadResult {
  readonly connections: number
  readonly duration: number
  readonly rate: number | undefined
  /** Responses by status over the whole run (autocannon's count). */
  readonly statuses: Readonly<Record<string, number>>
  readonly responses: number
  readonly non2xx: number
  readonly errors: number
  readonly timeouts: number
  /** Requests written but never answered (in flight when the run stopped, or timed out). */
  readonly unanswered: number
  /** Measured window: responses that arrived from `settle` seconds after the start to the end. */
  readonly window: {
    readonly seconds: number
    readonly responses: number
    /** Responses per second in the window (any status). */
    readonly rate: number
    /** 2xx per second in the window. */
    readonly okRate: number
    /** Latency of the window's 2xx responses, ms. */
    readonly latency: Latency
  }
  /** autocannon's own figures for the whole run, for reference. */
  readonly autocannon: { readonly rps: number; readonly p50: number; readonly p99: number; readonly max: number }
  /** One body per unexpected status, for diagnosis. */
  readonly samples: Readonly<Record<string, string>>
}

const percentile = (sorted: Float64Array, q: number) =>
  sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!

export const summarize = (values: ReadonlyArray<number>): Latency => {
  const sorted = Float64Array.from(values).sort()
  let sum = 0
  for (const v of sorted) sum += v
  return {
    p50: percentile(sorted, 0.5),
    p90: percentile(sorted, 0.9),
    p99: percentile(sorted, 0.99),
    p999: percentile(sorted, 0.999),
    max: sorted.length === 0 ? Number.NaN : sorted[sorted.length - 1]!,
    mean: sorted.length === 0 ? Number.NaN : sum / sorted.length
  }
}

/** The parts of autocannon's per-connection client that pace it (lib/httpClient.js, autocannon 8 and 9). */
interface PacedClient {
  rate: number
  reqsMadeThisSecond: number
  paused: boolean
  destroyed: boolean
  rateInterval: ReturnType<typeof setInterval> | undefined
  _doRequest: () => void
}

const isPaced = (client: unknown): client is PacedClient => {
  const c = client as Partial<PacedClient>
  return typeof c._doRequest === "function" && typeof c.reqsMadeThisSecond === "number" && typeof c.rate === "number"
}

let warnedUnpaced = false

/**
 * autocannon paces `overallRate` per connection with a 1 s interval started when the connection is made,
 * all at once: every second, every connection fires its share back to back, so the load arrives as one
 * burst per second (a closed loop over all connections) instead of at a steady rate. This spreads it:
 * each connection holds its first request, then starts its own 1 s cycle at a random offset within
 * the first second. With one request per connection per second, requests then arrive independently of
 * responses (an open loop) as long as responses take less than a second.
 */
const staggered = (client: autocannon.Client) => {
  if (!isPaced(client)) {
    if (!warnedUnpaced) console.warn("autocannon internals changed: fixed-rate load is not staggered (bursts per second)")
    warnedUnpaced = true
    return
  }
  const c = client
  c.reqsMadeThisSecond = Number.MAX_SAFE_INTEGER // the request sent on connect waits for the first tick
  const tick = () => {
    c.reqsMadeThisSecond = 0
    if (c.paused) {
      c.paused = false
      c._doRequest()
    }
  }
  setTimeout(() => {
    if (c.destroyed) return
    clearInterval(c.rateInterval)
    c.rateInterval = setInterval(tick, 1000)
    tick()
  }, Math.random() * 1000).unref()
}

export const runLoad = (options: LoadOptions): Promise<LoadResult> =>
  new Promise((resolve, reject) => {
    const ends: Array<number> = []
    const latencies: Array<number> = []
    const statuses: Array<number> = []
    const samples: Record<string, string> = {}
    let written = 0
    let answered = 0
    const { onResponse, setup } = options.request

    const t0 = performance.now()
    const instance = autocannon(
      {
        url: options.url,
        connections: options.connections,
        duration: options.duration,
        timeout: 10,
        ...(options.rate === undefined
          ? {}
          : {
            overallRate: options.rate,
            // Its correction assumes 1 ms between requests (ceil(1 / per-connection rate)): latencies
            // are taken from the responses here instead.
            ignoreCoordinatedOmission: true,
            setupClient: staggered
          }),
        requests: [{
          method: options.request.method,
          setupRequest: (request, context) => {
            written++
            return setup(request, context)
          },
          onResponse: (status, body, context) => {
            answered++
            if ((status < 200 || status >= 300) && samples[status] === undefined) samples[status] = body.slice(0, 300)
            onResponse?.(status, body, context)
          }
        }]
      },
      (error, result) => {
        if (error !== null) return reject(error)
        const from = t0 + options.settle * 1000
        const to = t0 + options.duration * 1000
        const ok: Array<number> = []
        let inWindow = 0
        for (let i = 0; i < ends.length; i++) {
          const end = ends[i]!
          if (end < from || end > to) continue
          inWindow++
          const status = statuses[i]!
          if (status >= 200 && status < 300) ok.push(latencies[i]!)
        }
        const seconds = (to - from) / 1000
        const counts: Record<string, number> = {}
        for (const [status, { count }] of Object.entries(result.statusCodeStats)) counts[status] = Number(count)
        resolve({
          connections: options.connections,
          duration: options.duration,
          rate: options.rate,
          statuses: counts,
          responses: Object.values(counts).reduce((a, b) => a + b, 0),
          non2xx: result.non2xx,
          errors: result.errors,
          timeouts: result.timeouts,
          unanswered: Math.max(0, written - answered),
          window: {
            seconds,
            responses: inWindow,
            rate: inWindow / seconds,
            okRate: ok.length / seconds,
            latency: summarize(ok)
          },
          autocannon: {
            rps: result.requests.average,
            p50: result.latency.p50,
            p99: result.latency.p99,
            max: result.latency.max
          },
          samples
        })
      }
    )
    instance.on("response", (_client, statusCode, _bytes, responseTime) => {
      ends.push(performance.now())
      latencies.push(responseTime)
      statuses.push(statusCode)
    })
  })
