import { Config, Effect, Layer } from "effect"
import * as Http from "node:http"
import { performance } from "node:perf_hooks"
import * as Prom from "prom-client"
import { Counter, Histogram } from "./Instruments.js"
import { type Gauges, Metrics, type MetricsShape, noMetrics } from "../../domain/ports/Metrics.js"
import { RateLimited } from "../../domain/Errors.js"
import { RateLimiter } from "../../domain/ports/RateLimiter.js"

export const MetricsConfig = Config.all({
  /** The metrics listener's port; 0 turns metrics off. Never the public port. */
  port: Config.integer("METRICS_PORT").pipe(
    Config.validate({ message: "METRICS_PORT must be from 0 to 65535", validation: (p) => p >= 0 && p <= 65535 }),
    Config.withDefault(9464)
  ),
  host: Config.string("METRICS_HOST").pipe(Config.withDefault("127.0.0.1"))
})

const latencyBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
const batchBuckets = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]

/** Close codes kept as label values; any other is "other". */
const knownCloseCodes = new Set([1000, 1001, 1002, 1003, 1005, 1006, 1007, 1008, 1009, 1011, 4001, 4002, 4003, 4004, 4005, 4006, 4007, 4008, 4009])
const closeCodeLabel = (code: number) => knownCloseCodes.has(code) ? String(code) : "other"
const statusClass = (status: number) => `${Math.floor(status / 100)}xx`

/** A cell per known label value, and one for any other ("other"): a label never carries what a client chose. */
const table = <C>(values: ReadonlyArray<string>, cell: (value: string) => C) => {
  const cells = new Map(values.map((value) => [value, cell(value)] as const))
  const other = cell("other")
  return (value: string): C => cells.get(value) ?? other
}

export interface Options {
  /** Route templates of the REST API ("/conversations/:id/messages"): a request's path is labelled by its template. */
  readonly routes: ReadonlyArray<string>
  /** Label values that may appear as they are (the rest are "other"). */
  readonly clientEvents: ReadonlyArray<string>
  readonly errorCodes: ReadonlyArray<string>
  readonly busEvents: ReadonlyArray<string>
}

/** A path's route template, from the API's templates (`:name` segments match one segment). */
export const routeMatcher = (templates: ReadonlyArray<string>) => {
  const compiled = templates.map((template) => ({
    template,
    pattern: new RegExp(
      `^${template.split("/").map((segment) => segment.startsWith(":") ? "[^/]+" : segment.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("/")}/?$`
    ),
    // Literal segments first: "/users/me" before "/users/:id".
    params: template.split("/").filter((segment) => segment.startsWith(":")).length
  })).sort((a, b) => a.params - b.params)
  const cache = new Map<string, string>()
  return (path: string): string => {
    const seen = cache.get(path)
    if (seen !== undefined) return seen
    const found = compiled.find(({ pattern }) => pattern.test(path))?.template ??
      (path === "/api" || path.startsWith("/api/") ? "/api/*" : "unmatched")
    // Only paths of a known template are kept: unknown ones are whatever a client sent.
    if (found !== "unmatched" && !path.includes(":") && cache.size < 10_000) cache.set(path, found)
    return found
  }
}

/** The registry and the recorders over it. */
export const make = (options: Options) => {
  const registry = new Prom.Registry()
  const registers = [registry]
  // Counters and histograms are the project's own (see Instruments.ts); gauges and the runtime, prom-client's.
  const families: Array<Counter | Histogram> = []
  const counter = (name: string, help: string, labelNames: ReadonlyArray<string> = []) => {
    const family = new Counter(name, help, labelNames)
    families.push(family)
    return family
  }
  const histogram = (name: string, help: string, bounds: ReadonlyArray<number>, labelNames: ReadonlyArray<string> = []) => {
    const family = new Histogram(name, help, bounds, labelNames)
    families.push(family)
    return family
  }
  const routeOf = routeMatcher(options.routes)
  const methods = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
  const transports = ["websocket", "socketio"] as const

  const httpDuration = histogram("chat_http_request_duration_seconds", "REST request duration, by method, route template and status class", latencyBuckets, ["method", "route", "status_class"])
  const httpRefused = counter("chat_http_refused_total", "REST requests answered 413, 429 or 503, by reason", ["status", "reason"])
  const opened = counter("chat_connections_opened_total", "Sockets opened", ["transport"])
  const closed = counter("chat_connections_closed_total", "Sockets closed, by close code", ["transport", "code"])
  const refused = counter("chat_connections_refused_total", "Socket upgrades and handshakes refused, by error code", ["transport", "code"])
  const frames = counter("chat_frames_received_total", "Client frames received, by event", ["transport", "event"])
  const errorFrames = counter("chat_error_frames_total", "Error frames sent, by error code", ["code"])
  const slow = counter("chat_slow_consumers_total", "Sockets cut off as too slow (close code 4009)", ["transport"])
  const sent = counter("chat_messages_sent_total", "Sends acked with their message, by door", ["door"])
  const sendDuration = histogram("chat_send_duration_seconds", "A send's arrival to its ack, by door", latencyBuckets, ["door"])
  const batchSize = histogram("chat_append_batch_size", "Messages per group-commit statement", batchBuckets).cell()
  const batchDuration = histogram("chat_append_duration_seconds", "Duration of a group-commit append statement (one per batch, committed)", latencyBuckets).cell()
  const delivered = counter("chat_messages_delivered_total", "Message frames written to this instance's sockets", ["kind"])
  const deliveryLag = histogram("chat_delivery_lag_seconds", "A message's commit to its frames written on this instance", latencyBuckets).cell()
  const busPublished = counter("chat_bus_published_total", "Events published on the bus, by event", ["event"])
  const busReceived = counter("chat_bus_received_total", "Events received from other instances, by event", ["event"])
  const busLag = histogram("chat_bus_lag_seconds", "An event's publish on another instance to its arrival here", latencyBuckets).cell()
  const redisFailures = counter("chat_redis_command_failures_total", "Redis commands that failed").cell()
  const queryFailures = counter("chat_db_query_failures_total", "Database statements that failed").cell()
  const rateLimited = counter("chat_rate_limited_total", "Rate-limit rejections, by bucket", ["bucket"])
  const pushJobs = counter("chat_push_jobs_total", "Push jobs handled, by outcome", ["outcome"])
  const webhookDeliveries = counter("chat_webhook_deliveries_total", "Webhook delivery attempts, by outcome", ["outcome"])

  // The message path's cells, found by a map lookup or a property read; label sets known in advance exist
  // from the start (at zero), so that a rate or an `increase()` sees their first event.
  const framesOf = {
    websocket: table([...options.clientEvents, "invalid"], (event) => frames.cell("websocket", event)),
    socketio: table([...options.clientEvents, "invalid"], (event) => frames.cell("socketio", event))
  }
  const errorFrameOf = table(options.errorCodes, (code) => errorFrames.cell(code))
  const sentOf = { rest: sent.cell("rest"), websocket: sent.cell("websocket"), socketio: sent.cell("socketio") }
  const sendDurationOf = {
    rest: sendDuration.cell("rest"),
    websocket: sendDuration.cell("websocket"),
    socketio: sendDuration.cell("socketio")
  }
  const deliveredOf = { room: delivered.cell("room"), notification: delivered.cell("notification") }
  const publishedOf = table(options.busEvents, (event) => busPublished.cell(event))
  const receivedOf = table(options.busEvents, (event) => busReceived.cell(event))
  const errorCode = table(options.errorCodes, (code) => code)
  for (const transport of transports) {
    opened.cell(transport)
    slow.cell(transport)
  }
  for (const [status, reason] of [["413", "body_too_large"], ["429", "rate_limited"], ["503", "in_flight_limit"], ["503", "shutting_down"], ["503", "unavailable"]] as const) {
    httpRefused.cell(status, reason)
  }
  for (const outcome of ["sent", "skipped", "retried", "dead"]) pushJobs.cell(outcome)
  for (const outcome of ["delivered", "retried", "given_up"]) webhookDeliveries.cell(outcome)
  // Gauges: read at each scrape from whoever registered a reader.
  const readers: Partial<Gauges> = {}
  const gauge = <L extends string>(name: string, help: string, labelNames: ReadonlyArray<L>, collect: (g: Prom.Gauge<L>) => void | Promise<void>) =>
    new Prom.Gauge({ name, help, labelNames, registers, collect() { return collect(this) } })
  gauge("chat_connections", "Open sockets, by transport", ["transport"], (g) => {
    const open = readers.connections?.() ?? { websocket: 0, socketio: 0 }
    for (const transport of ["websocket", "socketio"] as const) g.set({ transport }, open[transport])
  })
  gauge("chat_http_requests_in_flight", "REST requests being worked on", [], (g) => g.set(readers.httpInFlight?.() ?? 0))
  gauge("chat_db_pool_connections", "Database connections, by state (in_use, idle, waiting for one)", ["state"], (g) => {
    const pool = readers.dbPool?.()
    if (pool === undefined) return
    for (const state of ["in_use", "idle", "waiting"] as const) g.set({ state }, pool[state])
  })
  gauge("chat_db_migrations_applied", "Database migrations applied", [], (g) => g.set(readers.migrationsApplied?.() ?? 0))
  gauge("chat_presence_leases", "Presence leases this instance holds (users online here)", [], (g) => g.set(readers.presenceLeases?.() ?? 0))
  gauge("chat_redis_connected", "1 while the Redis connection is ready (absent without Redis)", ["connection"], (g) => {
    const redis = readers.redisConnected?.()
    if (redis === undefined) return
    g.set({ connection: "commands" }, redis.commands ? 1 : 0)
    g.set({ connection: "subscriber" }, redis.subscriber ? 1 : 0)
  })
  gauge("chat_ready", "1 when /ready answers ready, 0 when degraded or failing", [], async (g) => {
    const ready = readers.ready === undefined ? true : await readers.ready().catch(() => false)
    g.set(ready ? 1 : 0)
  })

  // The Node runtime: prom-client's defaults, less the gauges it names `…_total` (not counters: promtool rejects
  // them; `nodejs_active_handles` and the like say the same by type), plus event-loop utilisation.
  Prom.collectDefaultMetrics({ register: registry })
  for (const name of ["nodejs_active_handles_total", "nodejs_active_requests_total", "nodejs_active_resources_total"]) {
    registry.removeSingleMetric(name)
  }
  let lastLoop = performance.eventLoopUtilization()
  gauge("nodejs_eventloop_utilization", "Share of time the event loop was busy since the last scrape (0..1)", [], (g) => {
    const now = performance.eventLoopUtilization()
    g.set(performance.eventLoopUtilization(now, lastLoop).utilization)
    lastLoop = now
  })

  const recorders: MetricsShape = {
    enabled: true,
    httpRequest: (method, path, status, seconds) => {
      httpDuration.cell(methods.has(method) ? method : "other", routeOf(path), statusClass(status)).observe(seconds)
    },
    httpRefused: (status, reason) => void httpRefused.cell(String(status), reason).value++,
    connectionOpened: (transport) => void opened.cell(transport).value++,
    connectionClosed: (transport, code) => void closed.cell(transport, closeCodeLabel(code)).value++,
    connectionRefused: (transport, code) => void refused.cell(transport, errorCode(code)).value++,
    frameReceived: (transport, name) => void framesOf[transport](name).value++,
    errorFrame: (code) => void errorFrameOf(code).value++,
    slowConsumer: (transport) => void slow.cell(transport).value++,
    messageSent: (door, seconds, created) => {
      if (created) sentOf[door].value++
      sendDurationOf[door].observe(seconds)
    },
    appendBatch: (size, seconds) => {
      batchSize.observe(size)
      batchDuration.observe(seconds)
    },
    delivered: (kind, count, lagSeconds) => {
      deliveredOf[kind].value += count
      if (kind === "room") deliveryLag.observe(Math.max(0, lagSeconds))
    },
    busPublished: (name) => void publishedOf(name).value++,
    busReceived: (name, lagSeconds) => {
      receivedOf(name).value++
      if (lagSeconds !== undefined) busLag.observe(Math.max(0, lagSeconds))
    },
    redisCommandFailed: () => void redisFailures.value++,
    queryFailed: () => void queryFailures.value++,
    rateLimited: (bucket) => void rateLimited.cell(bucket).value++,
    pushJob: (outcome, count = 1) => void (pushJobs.cell(outcome).value += count),
    webhookDelivery: (outcome) => void webhookDeliveries.cell(outcome).value++,
    gauges: (more) => void Object.assign(readers, more)
  }
  /** The exposition: the project's counters and histograms, then prom-client's registry. */
  const text = async () => `${families.map((family) => family.render()).join("\n")}\n${await registry.metrics()}`
  return { registry, recorders, text, contentType: registry.contentType }
}

/** Serves the registry in Prometheus' text format at `/metrics` (anything else: 404). */
const serve = (exposition: { readonly text: () => Promise<string>; readonly contentType: string }, host: string, port: number) =>
  Effect.acquireRelease(
    Effect.async<Http.Server | undefined>((resume) => {
      const server = Http.createServer((req, res) => {
        if (req.method !== "GET" || (req.url ?? "").split("?", 1)[0] !== "/metrics") {
          res.writeHead(404, { "content-type": "text/plain" }).end("Not found: metrics are at /metrics\n")
          return
        }
        exposition.text().then(
          (text) => res.writeHead(200, { "content-type": exposition.contentType }).end(text),
          () => res.writeHead(500, { "content-type": "text/plain" }).end("Could not collect metrics\n")
        )
      })
      server.once("error", (error) => resume(Effect.as(Effect.logWarning(`Metrics not served: cannot listen on ${host}:${port} (${error.message})`), undefined)))
      server.listen(port, host, () => resume(Effect.as(Effect.logInfo(`Metrics at http://${host}:${port}/metrics`), server)))
    }),
    (server) =>
      server === undefined ? Effect.void : Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  )

/**
 * Metrics on `METRICS_HOST:METRICS_PORT` when the port is not 0; otherwise recorders that do nothing. A port
 * that cannot be bound is a warning, not a refused start: the chat goes on unobserved.
 */
export const layer = (options: Options) =>
  Layer.scoped(
    Metrics,
    Effect.gen(function*() {
      const config = yield* MetricsConfig
      if (config.port === 0) return noMetrics
      const made = make(options)
      yield* serve(made, config.host, config.port)
      const { recorders } = made
      return recorders
    })
  )

/** The rate limiter below, its refusals counted by bucket. */
export const countRejections = <E, R>(limiter: Layer.Layer<RateLimiter, E, R>) =>
  Layer.effect(
    RateLimiter,
    Effect.gen(function*() {
      const inner = yield* RateLimiter
      const metrics = yield* Metrics
      if (!metrics.enabled) return inner
      const refused = (bucket: string) => <A>(effect: Effect.Effect<A, RateLimited>) =>
        Effect.tapError(effect, () => Effect.sync(() => metrics.rateLimited(bucket)))
      return RateLimiter.of({
        hit: (limit, key) => refused(limit.bucket)(inner.hit(limit, key)),
        hitAll: (limit, keys) =>
          Effect.tap(inner.hitAll(limit, keys), (answers) => {
            for (const answer of answers) if (answer instanceof RateLimited) metrics.rateLimited(limit.bucket)
          }),
        peek: (limit, key) => refused(limit.bucket)(inner.peek(limit, key)),
        reset: inner.reset
      })
    })
  ).pipe(Layer.provide(limiter))
