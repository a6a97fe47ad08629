import { Effect, type Scope } from "effect"
import * as Http from "node:http"

/** One span as an OTLP/HTTP exporter sent it, with the `service.name` of its resource. */
export interface ReceivedSpan {
  readonly service: string
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId: string | undefined
  readonly name: string
  readonly kind: number
  readonly attributes: Readonly<Record<string, unknown>>
}

export interface OtlpReceiver {
  /** `OTEL_EXPORTER_OTLP_ENDPOINT` for it (the exporter appends `/v1/traces`). */
  readonly url: string
  readonly spans: Array<ReceivedSpan>
  /** Every request it got, whatever its path or body. */
  readonly requests: Array<{ readonly method: string; readonly path: string; readonly contentType: string }>
}

interface AnyValue {
  readonly stringValue?: string
  readonly boolValue?: boolean
  readonly intValue?: number | string
  readonly doubleValue?: number
}
interface KeyValue {
  readonly key: string
  readonly value?: AnyValue
}
interface ExportRequest {
  readonly resourceSpans?: ReadonlyArray<{
    readonly resource?: { readonly attributes?: ReadonlyArray<KeyValue> }
    readonly scopeSpans?: ReadonlyArray<{
      readonly spans?: ReadonlyArray<{
        readonly traceId: string
        readonly spanId: string
        readonly parentSpanId?: string
        readonly name: string
        readonly kind: number
        readonly attributes?: ReadonlyArray<KeyValue>
      }>
    }>
  }>
}

const valueOf = (value: AnyValue | undefined): unknown =>
  value === undefined
    ? undefined
    : value.stringValue ?? value.boolValue ?? (value.intValue === undefined ? value.doubleValue : Number(value.intValue))

const recordOf = (attributes: ReadonlyArray<KeyValue> | undefined) =>
  Object.fromEntries((attributes ?? []).map(({ key, value }) => [key, valueOf(value)]))

/** Spans in an OTLP/JSON export request (ids are hex strings in OTLP/JSON). */
export const spansOf = (request: ExportRequest): Array<ReceivedSpan> =>
  (request.resourceSpans ?? []).flatMap((resourceSpans) => {
    const service = String(recordOf(resourceSpans.resource?.attributes)["service.name"])
    return (resourceSpans.scopeSpans ?? []).flatMap((scope) =>
      (scope.spans ?? []).map((span) => ({
        service,
        traceId: span.traceId,
        spanId: span.spanId,
        parentSpanId: span.parentSpanId === undefined || span.parentSpanId === "" ? undefined : span.parentSpanId,
        name: span.name,
        kind: span.kind,
        attributes: recordOf(span.attributes)
      }))
    )
  })

/**
 * A small OTLP/HTTP collector on loopback: `POST /v1/traces` with a JSON body (what
 * `@opentelemetry/exporter-trace-otlp-http` sends) is decoded into `spans`; anything else is a 404 or 415.
 */
export const otlpReceiver: Effect.Effect<OtlpReceiver, never, Scope.Scope> = Effect.acquireRelease(
  Effect.async<{ readonly receiver: OtlpReceiver; readonly server: Http.Server }>((resume) => {
    const spans: Array<ReceivedSpan> = []
    const requests: Array<{ method: string; path: string; contentType: string }> = []
    const server = Http.createServer((req, res) => {
      const chunks: Array<Buffer> = []
      req.on("data", (chunk: Buffer) => chunks.push(chunk))
      req.on("end", () => {
        const contentType = req.headers["content-type"] ?? ""
        requests.push({ method: req.method ?? "", path: req.url ?? "", contentType })
        if (req.method !== "POST" || req.url !== "/v1/traces") return void res.writeHead(404).end()
        if (!contentType.startsWith("application/json")) return void res.writeHead(415).end()
        spans.push(...spansOf(JSON.parse(Buffer.concat(chunks).toString("utf8"))))
        res.writeHead(200, { "content-type": "application/json" }).end("{}")
      })
    })
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      resume(Effect.succeed({ receiver: { url: `http://127.0.0.1:${port}`, spans, requests }, server }))
    })
  }),
  ({ server }) =>
    Effect.async<void>((resume) => {
      server.closeAllConnections()
      server.close(() => resume(Effect.void))
    })
).pipe(Effect.map(({ receiver }) => receiver))
