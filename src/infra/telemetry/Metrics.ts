import { Config, Effect, Layer } from "effect"
import * as Http from "node:http"
import { performance } from "node:perf_hooks"
import * as Prom from "prom-client"
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

/** Label values from outside a closed set become "other": a label never carries what a client chose. */
const bounded = (allowed: ReadonlySet<string>) => (value: string) => allowed.has(value) ? value : "other"

/**
 * A label set's child, made once and found again by one map lookup per label (no array, no joined key: this
 * is on the message path), where `inc(labels)` would hash an object on every call.
 */
const byOne = <C>(metric: { labels(a: string): C }) => {
  const made = new Map<string, C>()
  return (a: string): C => {
    let found = made.get(a)
    if (found === undefined) made.set(a, found = metric.labels(a))
    return found
  }
}
const byTwo = <C>(metric: { labels(a: string, b: string): C }) => {
  const made = new Map<string, (b: string) => C>()
  return (a: string, b: string): C => {
    let inner = made.get(a)
    if (inner === undefined) made.set(a, inner = byOne({ labels: (b: string) => metric.labels(a, b) }))
    return inner(b)
  }
}
const byThree = <C>(metric: { labels(a: string, b: string, c: string): C }) => {
  const made = new Map<string, (b: string, c: string) => C>()
  return (a: string, b: string, c: string): C => {
    let inner = made.get(a)
    if (inner === undefined) made.set(a, inner = byTwo({ labels: (b: string, c: string) => metric.labels(a, b, c) }))
    return inner(b, c)
  }
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
  const counter = <L extends string>(name: string, help: string, labelNames: ReadonlyArray<L> = []) =>
    new Prom.Counter({ name, help, labelNames, registers })
  const histogram = <L extends string>(name: string, help: string, buckets: Array<number>, labelNames: ReadonlyArray<L> = []) =>
    new Prom.Histogram({ name, help, labelNames, buckets, registers })

  const event = bounded(new Set([...options.clientEvents, "invalid"]))
  const errorCode = bounded(new Set(options.errorCodes))
  const busEvent = bounded(new Set(options.busEvents))
  const routeOf = routeMatcher(options.routes)
  const methods = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])

  const httpDuration = byThree(histogram("chat_http_request_duration_seconds", "REST request duration, by method, route template and status class", latencyBuckets, ["method", "route", "status_class"]))
  const httpRefused = byTwo(counter("chat_http_refused_total", "REST requests answered 413, 429 or 503, by reason", ["status", "reason"]))
  const opened = byOne(counter("chat_connections_opened_total", "Sockets opened", ["transport"]))
  const closed = byTwo(counter("chat_connections_closed_total", "Sockets closed, by close code", ["transport", "code"]))
  const refused = byTwo(counter("chat_connections_refused_total", "Socket upgrades and handshakes refused, by error code", ["transport", "code"]))
  const frames = byTwo(counter("chat_frames_received_total", "Client frames received, by event", ["transport", "event"]))
  const errorFrames = byOne(counter("chat_error_frames_total", "Error frames sent, by error code", ["code"]))
  const slow = byOne(counter("chat_slow_consumers_total", "Sockets cut off as too slow (close code 4009)", ["transport"]))
  const sent = byOne(counter("chat_messages_sent_total", "Sends acked with their message, by door", ["door"]))
  const sendDurations = histogram("chat_send_duration_seconds", "A send's arrival to its ack, by door", latencyBuckets, ["door"])
  const sendDuration = byOne(sendDurations)
  const batchSize = histogram("chat_append_batch_size", "Messages per group-commit flush", batchBuckets)
  const batchDuration = histogram("chat_append_duration_seconds", "Duration of a group-commit append statement (one per batch, committed)", latencyBuckets)
  const deliveredFrames = byOne(counter("chat_messages_delivered_total", "Message frames written to this instance's sockets", ["kind"]))
  const deliveryLag = histogram("chat_delivery_lag_seconds", "A message's commit to its frames written on this instance", latencyBuckets)
  const busPublished = byOne(counter("chat_bus_published_total", "Events published on the bus, by event", ["event"]))
  const busReceived = byOne(counter("chat_bus_received_total", "Events received from other instances, by event", ["event"]))
  const busLag = histogram("chat_bus_lag_seconds", "An event's publish on another instance to its arrival here", latencyBuckets)
  const redisFailures = counter("chat_redis_command_failures_total", "Redis commands that failed")
  const queryFailures = counter("chat_db_query_failures_total", "Database statements that failed")
  const rateLimited = byOne(counter("chat_rate_limited_total", "Rate-limit rejections, by bucket", ["bucket"]))
  const pushJobs = byOne(counter("chat_push_jobs_total", "Push jobs handled, by outcome", ["outcome"]))
  const webhookDeliveries = byOne(counter("chat_webhook_deliveries_total", "Webhook delivery attempts, by outcome", ["outcome"]))

  // Label sets known in advance start at zero, so that a rate or an `increase()` sees their first event.
  for (const door of ["rest", "websocket", "socketio"]) {
    sent(door).inc(0)
    sendDurations.zero({ door })
  }
  for (const transport of ["websocket", "socketio"]) {
    opened(transport).inc(0)
    slow(transport).inc(0)
  }
  for (const kind of ["room", "notification"]) deliveredFrames(kind).inc(0)
  for (const code of ["Internal", "Unavailable", "Overloaded", "RateLimited"]) errorFrames(code).inc(0)
  for (const [status, reason] of [["413", "body_too_large"], ["429", "rate_limited"], ["503", "in_flight_limit"], ["503", "shutting_down"], ["503", "unavailable"]] as const) {
    httpRefused(status, reason).inc(0)
  }
  for (const outcome of ["sent", "skipped", "retried", "dead"]) pushJobs(outcome).inc(0)
  for (const outcome of ["delivered", "retried", "given_up"]) webhookDeliveries(outcome).inc(0)

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
      httpDuration(methods.has(method) ? method : "other", routeOf(path), statusClass(status)).observe(seconds)
    },
    httpRefused: (status, reason) => httpRefused(String(status), reason).inc(),
    connectionOpened: (transport) => opened(transport).inc(),
    connectionClosed: (transport, code) => closed(transport, closeCodeLabel(code)).inc(),
    connectionRefused: (transport, code) => refused(transport, errorCode(code)).inc(),
    frameReceived: (transport, name) => frames(transport, event(name)).inc(),
    errorFrame: (code) => errorFrames(errorCode(code)).inc(),
    slowConsumer: (transport) => slow(transport).inc(),
    messageSent: (door, seconds, created) => {
      if (created) sent(door).inc()
      sendDuration(door).observe(seconds)
    },
    appendBatch: (size, seconds) => {
      batchSize.observe(size)
      batchDuration.observe(seconds)
    },
    delivered: (kind, count, lagSeconds) => {
      deliveredFrames(kind).inc(count)
      if (kind === "room") deliveryLag.observe(Math.max(0, lagSeconds))
    },
    busPublished: (name) => busPublished(busEvent(name)).inc(),
    busReceived: (name, lagSeconds) => {
      busReceived(busEvent(name)).inc()
      if (lagSeconds !== undefined) busLag.observe(Math.max(0, lagSeconds))
    },
    redisCommandFailed: () => redisFailures.inc(),
    queryFailed: () => queryFailures.inc(),
    rateLimited: (bucket) => rateLimited(bucket).inc(),
    pushJob: (outcome, count = 1) => pushJobs(outcome).inc(count),
    webhookDelivery: (outcome) => webhookDeliveries(outcome).inc(),
    gauges: (more) => void Object.assign(readers, more)
  }
  return { registry, recorders }
}

/** Serves the registry in Prometheus' text format at `/metrics` (anything else: 404). */
const serve = (registry: Prom.Registry, host: string, port: number) =>
  Effect.acquireRelease(
    Effect.async<Http.Server | undefined>((resume) => {
      const server = Http.createServer((req, res) => {
        if (req.method !== "GET" || (req.url ?? "").split("?", 1)[0] !== "/metrics") {
          res.writeHead(404, { "content-type": "text/plain" }).end("Not found: metrics are at /metrics\n")
          return
        }
        registry.metrics().then(
          (text) => res.writeHead(200, { "content-type": registry.contentType }).end(text),
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
      const { recorders, registry } = make(options)
      yield* serve(registry, config.host, config.port)
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
