import { Context } from "effect"

/**
 * Whether spans are exported from this process (`OTEL_EXPORTER_OTLP_ENDPOINT`), decided once at start. Services
 * read it when their layer is built and choose their traced code paths then: untraced, a send costs what it
 * cost before tracing existed (no span, no fiber for a socket's send).
 */
export class TracingEnabled extends Context.Reference<TracingEnabled>()("Telemetry/TracingEnabled", {
  defaultValue: () => false
}) {}
