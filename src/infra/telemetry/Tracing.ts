import * as OtelResource from "@effect/opentelemetry/Resource"
import * as OtelTracer from "@effect/opentelemetry/Tracer"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http"
import { BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler } from "@opentelemetry/sdk-trace-base"
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node"
import { ATTR_SERVICE_INSTANCE_ID } from "@opentelemetry/semantic-conventions"
import { Config, Effect, Layer, Option, Runtime, type Tracer } from "effect"
import * as Crypto from "node:crypto"
import type { ChatEvent } from "../../domain/chat/Events.js"
import { Bus } from "../../domain/ports/Bus.js"
import { TracingEnabled } from "../../domain/ports/Tracing.js"

export const TracingConfig = Config.all({
  /** An OTLP/HTTP collector (`/v1/traces` is appended); unset, tracing is off. */
  endpoint: Config.option(Config.string("OTEL_EXPORTER_OTLP_ENDPOINT")),
  serviceName: Config.string("OTEL_SERVICE_NAME").pipe(Config.withDefault("trainer-chat")),
  /** The share of traces kept, decided where a trace starts; spans continuing a trace follow its decision. */
  ratio: Config.number("OTEL_TRACES_SAMPLER_ARG").pipe(
    Config.validate({ message: "OTEL_TRACES_SAMPLER_ARG is a ratio from 0 to 1", validation: (r) => r >= 0 && r <= 1 }),
    Config.withDefault(0.01)
  ),
  /** How long ended spans wait to be sent together, in milliseconds (as OpenTelemetry's SDKs read it). */
  scheduleDelayMs: Config.integer("OTEL_BSP_SCHEDULE_DELAY").pipe(Config.withDefault(5000))
})

const tracesUrl = (endpoint: string) => `${endpoint.replace(/\/+$/, "")}/v1/traces`

/** Spans batched and sent over OTLP/HTTP (JSON); what is still queued is sent when the scope closes. */
const providerLayer = (config: Config.Config.Success<typeof TracingConfig>, endpoint: string) =>
  Layer.scoped(
    OtelTracer.OtelTracerProvider,
    Effect.flatMap(OtelResource.Resource, (resource) =>
      Effect.acquireRelease(
        Effect.sync(() =>
          new NodeTracerProvider({
            resource,
            sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(config.ratio) }),
            spanProcessors: [
              new BatchSpanProcessor(new OTLPTraceExporter({ url: tracesUrl(endpoint) }), {
                scheduledDelayMillis: config.scheduleDelayMs
              })
            ]
          })
        ),
        (provider) =>
          Effect.tryPromise(() => provider.forceFlush().then(() => provider.shutdown())).pipe(
            Effect.timeoutFail({ duration: "3 seconds", onTimeout: () => "timed out" }),
            Effect.catchAll((cause) => Effect.logWarning("Could not send the last spans", cause))
          )
      ))
  )

/** Probes answer many times a minute and say nothing a trace would need. */
const untracedProbes = Layer.scopedDiscard(
  Effect.locallyScoped(
    HttpMiddleware.currentTracerDisabledWhen,
    (request) => request.url === "/health" || request.url === "/ready"
  )
)

/**
 * With `OTEL_EXPORTER_OTLP_ENDPOINT`: Effect's tracer is OpenTelemetry's (sampled by `OTEL_TRACES_SAMPLER_ARG`,
 * parent-based), and `TracingEnabled` tells services to take their traced paths. Without: the tracer is disabled,
 * so that no span is made at all (spans made and dropped would cost every request).
 */
export const layer = Layer.unwrapEffect(
  Effect.map(TracingConfig, (config) =>
    Option.match(config.endpoint, {
      onNone: () => Layer.setTracerEnabled(false),
      onSome: (endpoint) =>
        Layer.mergeAll(OtelTracer.layer, Layer.succeed(TracingEnabled, true), untracedProbes).pipe(
          Layer.provide(providerLayer(config, endpoint)),
          Layer.provide(OtelResource.layer({
            serviceName: config.serviceName,
            attributes: { [ATTR_SERVICE_INSTANCE_ID]: Crypto.randomUUID() }
          }))
        )
    }))
)

// ---- W3C trace context on bus events -------------------------------------------------------------------

const traceparentPattern = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/

const traceparentOf = (span: Tracer.AnySpan): string => `00-${span.traceId}-${span.spanId}-${span.sampled ? "01" : "00"}`

/** The remote span a `traceparent` names; undefined when it names none (malformed, or all zeros). */
export const parentOf = (traceparent: string): Tracer.ExternalSpan | undefined => {
  const parts = traceparentPattern.exec(traceparent)
  if (parts === null || /^0+$/.test(parts[1]!) || /^0+$/.test(parts[2]!)) return undefined
  return OtelTracer.makeExternalSpan({ traceId: parts[1]!, spanId: parts[2]!, traceFlags: Number.parseInt(parts[3]!, 16) })
}

/**
 * A bus's `publish` for when tracing is on: published within a sampled span, the event goes out in a
 * "Bus.publish" span (a producer) and carries that span's `traceparent`; otherwise as it is, not one byte more.
 */
export const tracedPublish = (publish: (event: ChatEvent) => Effect.Effect<void>) => (event: ChatEvent): Effect.Effect<void> =>
  Effect.flatMap(Effect.currentParentSpan.pipe(Effect.option), (parent) =>
    Option.isNone(parent) || !parent.value.sampled
      ? publish(event)
      : Effect.useSpan(
        "Bus.publish",
        { kind: "producer", captureStackTrace: false, attributes: { "chat.event": event._tag } },
        (span) => publish(span.sampled ? { ...event, traceparent: traceparentOf(span) } : event)
      ))

/** `layer`'s bus, whose events carry their publisher's trace context when tracing is on (see `tracedPublish`). */
export const tracedBus = <E, R>(layer: Layer.Layer<Bus, E, R>): Layer.Layer<Bus, E, R> =>
  Layer.effect(
    Bus,
    Effect.gen(function*() {
      const bus = yield* Bus
      return (yield* TracingEnabled) ? Bus.of({ ...bus, publish: tracedPublish(bus.publish) }) : bus
    })
  ).pipe(Layer.provide(layer))

/**
 * A bus subscriber that runs, for an event carrying a `traceparent`, in a consumer span `name` whose parent is
 * the publisher's span (on this instance or another). With tracing off, `deliver` itself.
 */
export const tracedDelivery = (name: string, deliver: (event: ChatEvent) => void) =>
  Effect.gen(function*() {
    if (!(yield* TracingEnabled)) return deliver
    const runSync = Runtime.runSync(yield* Effect.runtime<never>())
    return (event: ChatEvent): void => {
      const parent = event.traceparent === undefined ? undefined : parentOf(event.traceparent)
      if (parent === undefined) return deliver(event)
      runSync(Effect.withSpan(Effect.sync(() => deliver(event)), name, {
        parent,
        kind: "consumer",
        captureStackTrace: false,
        attributes: { "chat.event": event._tag }
      }))
    }
  })

/**
 * A request answered outside the HttpApp (uWS routes of its own), in a span like the one the HttpApp's tracer
 * middleware makes: a server span, continuing the client's trace when it sent a `traceparent`.
 */
export const httpServerSpan = <A extends { readonly status: number }, E, R>(
  request: { readonly method: string; readonly path: string; readonly route: string; readonly traceparent: string },
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> =>
  Effect.useSpan(`http.server ${request.method}`, {
    kind: "server",
    captureStackTrace: false,
    parent: request.traceparent === "" ? undefined : parentOf(request.traceparent),
    attributes: { "http.request.method": request.method, "url.path": request.path, "http.route": request.route }
  }, (span) =>
    Effect.tap(
      Effect.withParentSpan(effect, span),
      (answer) => span.attribute("http.response.status_code", answer.status)
    ))
