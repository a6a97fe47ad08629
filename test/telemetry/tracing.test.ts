import { expect, it, vi } from "@effect/vitest"
import { ConfigProvider, Effect, FiberRef, Logger, LogLevel, Schedule } from "effect"
import * as Crypto from "node:crypto"
import { TracingEnabled } from "../../src/domain/ports/Tracing.js"
import * as Logging from "../../src/infra/Logging.js"
import * as Tracing from "../../src/infra/telemetry/Tracing.js"
import { pair } from "../support/Chat.js"
import { freshDatabase, freshRedis } from "../support/Database.js"
import { startInstance } from "../support/Instances.js"
import { otlpReceiver, type OtlpReceiver, type ReceivedSpan } from "../support/OtlpReceiver.js"
import { connectIo } from "../support/SocketIo.js"
import { TestServer } from "../support/TestApp.js"
import { connect, is } from "../support/Ws.js"

const withConfig = (entries: Record<string, string>) =>
  Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(entries))))

/** What the logger writes to the console while `effect` runs, one entry per line. */
const consoleLines = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => {
      const lines: Array<string> = []
      const spy = vi.spyOn(console, "log").mockImplementation((line: unknown) => void lines.push(String(line)))
      return { lines, spy }
    }),
    ({ lines }) => Effect.map(effect, (value) => ({ value, lines })),
    ({ spy }) => Effect.sync(() => spy.mockRestore())
  )

/** Polls what the receiver holds until `find` finds something there. */
const eventually = <A>(receiver: OtlpReceiver, find: (spans: ReadonlyArray<ReceivedSpan>) => A | undefined, what: string) =>
  Effect.suspend(() => {
    const found = find(receiver.spans)
    return found === undefined ? Effect.fail(new Error(`no ${what} yet`)) : Effect.succeed(found)
  }).pipe(
    Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.upTo("15 seconds"))),
    Effect.orElse(() =>
      Effect.dieMessage(
        `${what} never arrived; of ${receiver.spans.length} spans, the last: ${
          receiver.spans.slice(-30).map((s) => `${s.service}/${s.name}`).join(", ")
        }`
      )
    )
  )

it.effect("a log line written inside a span carries its traceId and spanId (json and logfmt); outside one, none", () =>
  Effect.gen(function*() {
    const program = Effect.gen(function*() {
      yield* Effect.logInfo("outside")
      const span = yield* Effect.zipLeft(Effect.orDie(Effect.currentSpan), Effect.logInfo("inside")).pipe(Effect.withSpan("work"))
      // A disabled tracer's spans are no-ops: their made-up ids are not written.
      yield* Effect.logInfo("disabled").pipe(Effect.withSpan("off"), Effect.withTracerEnabled(false))
      return span
    }).pipe(Effect.provide(Logging.layer))

    const json = yield* consoleLines(withConfig({ LOG_FORMAT: "json" })(program))
    const parsed = json.lines.map((line) => JSON.parse(line))
    const byMessage = (message: string) => parsed.find((line) => line.message === message)
    expect(byMessage("inside").annotations).toMatchObject({ traceId: json.value.traceId, spanId: json.value.spanId })
    expect(json.value.traceId).toMatch(/^[0-9a-f]{32}$/)
    expect(byMessage("outside").annotations).toEqual({})
    expect(byMessage("disabled").annotations).toEqual({})

    const logfmt = yield* consoleLines(withConfig({ LOG_FORMAT: "logfmt" })(program))
    const inside = logfmt.lines.find((line) => line.includes("message=inside"))
    expect(inside).toContain(`traceId=${logfmt.value.traceId}`)
    expect(inside).toContain(`spanId=${logfmt.value.spanId}`)
    expect(logfmt.lines.find((line) => line.includes("message=outside"))).not.toContain("traceId=")
  }))

it.live("without OTEL_EXPORTER_OTLP_ENDPOINT the tracer is disabled and nothing is exported; with it, spans reach the collector", () =>
  Effect.gen(function*() {
    const receiver = yield* otlpReceiver
    const probe = Effect.gen(function*() {
      const span = yield* Effect.orDie(Effect.currentSpan).pipe(Effect.withSpan("unit.work"))
      return { enabled: yield* FiberRef.get(FiberRef.currentTracerEnabled), traced: yield* TracingEnabled, span }
    })

    // Off: even with the signal's own endpoint variable pointing at the collector (an SDK would follow it).
    const off = yield* probe.pipe(
      Effect.provide(Tracing.layer),
      withConfig({ OTEL_TRACES_SAMPLER_ARG: "1", OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${receiver.url}/v1/traces` })
    )
    expect(off).toMatchObject({ enabled: false, traced: false, span: { sampled: false } })

    const on = yield* probe.pipe(
      Effect.provide(Tracing.layer),
      withConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_TRACES_SAMPLER_ARG: "1", OTEL_SERVICE_NAME: "unit" })
    )
    expect(on).toMatchObject({ enabled: true, traced: true, span: { sampled: true } })
    // The batch waits 5 s by default: the span arrived because the layer's end sent what was queued.
    expect(receiver.spans).toEqual([expect.objectContaining({ service: "unit", name: "unit.work", traceId: on.span.traceId })])
    expect(receiver.requests.every((r) => r.path === "/v1/traces" && r.contentType.startsWith("application/json"))).toBe(true)

    // Sampling is decided where a trace starts: at ratio 0 a new trace is dropped, a continued sampled one kept.
    const traceId = Crypto.randomBytes(16).toString("hex")
    const parent = Tracing.parentOf(`00-${traceId}-${Crypto.randomBytes(8).toString("hex")}-01`)
    yield* Effect.all([
      Effect.void.pipe(Effect.withSpan("unit.root")),
      Effect.void.pipe(Effect.withSpan("unit.continued", parent === undefined ? {} : { parent }))
    ]).pipe(
      Effect.provide(Tracing.layer),
      withConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_TRACES_SAMPLER_ARG: "0", OTEL_SERVICE_NAME: "unit" })
    )
    expect(receiver.spans.map((s) => s.name)).toEqual(["unit.work", "unit.continued"])
    expect(receiver.spans[1]?.traceId).toBe(traceId)
  }).pipe(Effect.scoped))

/** The chain of parents from `span` up to the first span named `until`, as "service/name". */
const ancestry = (receiver: OtlpReceiver, span: ReceivedSpan, until: string) =>
  Effect.gen(function*() {
    const chain: Array<ReceivedSpan> = [span]
    while (chain.at(-1)!.name !== until && chain.length < 10) {
      const parentId = chain.at(-1)!.parentSpanId
      if (parentId === undefined) break
      chain.push(yield* eventually(receiver, (spans) => spans.find((s) => s.spanId === parentId), `span ${parentId}`))
    }
    return chain
  })

it.live("one instance without Redis: a Socket.IO send and its delivery to a WebSocket are one trace", () =>
  Effect.gen(function*() {
    const receiver = yield* otlpReceiver
    const instance = yield* startInstance({
      ...(yield* freshDatabase),
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_TRACES_SAMPLER_ARG: "1",
      OTEL_BSP_SCHEDULE_DELAY: "100"
    })
    const { conversationId, trainer, user } = yield* Effect.provideService(pair, TestServer, instance.server)
    const reader = yield* Effect.provideService(connect(trainer.token), TestServer, instance.server)
    yield* reader.request("joinConversation", { conversationId })
    const sender = yield* Effect.provideService(connectIo(user.token), TestServer, instance.server)
    const ack = yield* sender.request("sendMessage", { conversationId, content: "over Socket.IO", clientMessageId: "io-1" })
    yield* reader.next(is("newMessage", (m) => m.id === ack.message.id))

    const send = yield* eventually(receiver, (spans) =>
      spans.find((s) => s.name === "Messages.send" && s.attributes["chat.door"] === "socketio"), "the Socket.IO send's span")
    const delivery = yield* eventually(
      receiver,
      (spans) => spans.find((s) => s.name === "FanOut.deliver" && s.traceId === send.traceId),
      "the delivery's span"
    )
    const chain = yield* ancestry(receiver, delivery, "Messages.send")
    expect(chain.map((s) => `${s.service}/${s.name}`)).toEqual([
      "trainer-chat/FanOut.deliver",
      "trainer-chat/Bus.publish",
      "trainer-chat/Messages.commit",
      "trainer-chat/Messages.send"
    ])
    expect(chain.at(-1)?.spanId).toBe(send.spanId)
  }).pipe(Effect.scoped), 60_000)

// Several instances share one Postgres and one Redis; PGlite is one process's database.
const ready = process.env.DATABASE_URL && process.env.REDIS_URL
const why = "needs DATABASE_URL and REDIS_URL: instances share a Postgres and a Redis"

it.live.skipIf(!ready)(`one trace follows a message from its send on instance A to its delivery on instance B (${why})`, () =>
  Effect.gen(function*() {
    const receiver = yield* otlpReceiver
    // What an untraced instance would export if it made spans (it must not).
    const untracedReceiver = yield* otlpReceiver
    const shared = { ...(yield* freshDatabase), ...(yield* freshRedis) }
    const traced = { ...shared, OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_TRACES_SAMPLER_ARG: "1", OTEL_BSP_SCHEDULE_DELAY: "100" }
    const logsOfA: Array<string> = []
    const logsOfC: Array<string> = []
    const [a, b, c] = yield* Effect.all([
      startInstance({ ...traced, OTEL_SERVICE_NAME: "chat-a", LOG_FORMAT: "json", LOG_LEVEL: "Info" }, { logs: logsOfA }),
      startInstance({ ...traced, OTEL_SERVICE_NAME: "chat-b" }),
      startInstance({
        ...shared,
        OTEL_SERVICE_NAME: "chat-c",
        OTEL_TRACES_SAMPLER_ARG: "1",
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${untracedReceiver.url}/v1/traces`,
        LOG_FORMAT: "json",
        LOG_LEVEL: "Info"
      }, { logs: logsOfC })
    ], { concurrency: 3 })
    const on = <A, E, R>(instance: typeof a, effect: Effect.Effect<A, E, R>) => Effect.provideService(effect, TestServer, instance.server)

    // What goes through Redis, as it goes.
    const raw: Array<string> = []
    const { Redis } = yield* Effect.promise(() => import("ioredis"))
    const listener = yield* Effect.acquireRelease(
      Effect.promise(async () => {
        const client = new Redis(shared.REDIS_URL!)
        client.on("message", (_channel: string, text: string) => void raw.push(text))
        await client.subscribe(`${shared.REDIS_PREFIX}events`)
        return client
      }),
      (client) => Effect.sync(() => client.disconnect())
    )
    expect(listener.status).toBe("ready")

    // The user sends on A over WebSocket; the trainer reads on B.
    const { conversationId, trainer, user } = yield* on(a, pair)
    const reader = yield* on(b, connect(trainer.token))
    yield* reader.request("joinConversation", { conversationId })
    const sender = yield* on(a, connect(user.token))
    const ack = yield* sender.request("sendMessage", { conversationId, content: "traced", clientMessageId: "t1" })
    expect(ack.event).toBe("ack")
    const messageId: string = ack.data.message.id
    yield* reader.next(is("newMessage", (m) => m.id === messageId))

    const send = yield* eventually(receiver, (spans) =>
      spans.find((s) =>
        s.service === "chat-a" && s.name === "Messages.send" && s.attributes["chat.door"] === "websocket" &&
        s.attributes["chat.conversation_id"] === conversationId
      ), "the send's span on A")
    const delivery = yield* eventually(
      receiver,
      (spans) => spans.find((s) => s.service === "chat-b" && s.name === "FanOut.deliver" && s.traceId === send.traceId),
      "the delivery's span on B in the send's trace"
    )
    // The delivery on B descends from the send on A, through spans that all arrived.
    const chain = yield* ancestry(receiver, delivery, "Messages.send")
    expect(chain.at(-1)?.spanId).toBe(send.spanId)
    expect(chain.map((s) => `${s.service}/${s.name}`)).toEqual([
      "chat-b/FanOut.deliver",
      "chat-a/Bus.publish",
      "chat-a/Messages.commit",
      "chat-a/Messages.send"
    ])
    expect(new Set(chain.map((s) => s.traceId))).toEqual(new Set([send.traceId]))
    expect(delivery.attributes["chat.event"]).toBe("MessageCreated")
    // The send's steps: access, then the commit's wait, in which its batch's steps and its publish happened.
    const childrenOf = (span: ReceivedSpan) => receiver.spans.filter((s) => s.parentSpanId === span.spanId).map((s) => s.name).sort()
    const commit = chain[2]!
    yield* eventually(receiver, () => childrenOf(commit).length >= 4 ? true : undefined, "the commit's steps")
    expect(childrenOf(send)).toEqual(["Messages.access", "Messages.commit"])
    expect(childrenOf(commit)).toEqual(["Bus.publish", "Messages.append", "Messages.pageVersions", "Messages.rateLimit"])
    // The delivery on A, to its own sockets, is in the trace too.
    yield* eventually(
      receiver,
      (spans) => spans.find((s) => s.service === "chat-a" && s.name === "FanOut.deliver" && s.parentSpanId === chain[1]!.spanId),
      "the delivery's span on A"
    )
    // The trace context rode on the Redis message.
    expect(raw.find((text) => text.includes(messageId))).toContain(`"traceparent":"00-${send.traceId}-${chain[1]!.spanId}-01"`)

    // A REST send continues the client's trace: its request span, the send in it, and the request's log line.
    const clientTrace = Crypto.randomBytes(16).toString("hex")
    const clientSpan = Crypto.randomBytes(8).toString("hex")
    const rest = yield* a.server.request("POST", "/chat/messages", {
      token: user.token,
      headers: { traceparent: `00-${clientTrace}-${clientSpan}-01` },
      body: { conversationId, content: "over REST" }
    })
    expect(rest.status).toBe(201)
    const request = yield* eventually(
      receiver,
      (spans) => spans.find((s) => s.service === "chat-a" && s.name === "http.server POST" && s.traceId === clientTrace),
      "the REST request's span"
    )
    expect(request).toMatchObject({ parentSpanId: clientSpan, attributes: { "http.route": "/chat/messages", "http.response.status_code": 201 } })
    yield* eventually(
      receiver,
      (spans) => spans.find((s) => s.name === "Messages.send" && s.parentSpanId === request.spanId && s.attributes["chat.door"] === "rest"),
      "the REST send's span"
    )
    const logLine = logsOfA.map((line) => JSON.parse(line)).find((line) => line.message === "POST /chat/messages 201")
    expect(logLine.annotations).toMatchObject({ traceId: clientTrace, spanId: request.spanId })
    // Requests through the HttpApp have spans too; the probes (asked many times while the instances started) none.
    expect(receiver.spans.some((s) => s.name === "http.server POST" && s.attributes["url.path"] === "/chat/conversations")).toBe(true)
    expect(receiver.spans.filter((s) => s.attributes["url.path"] === "/ready" || s.attributes["url.path"] === "/health")).toEqual([])

    // An instance without an endpoint exports nothing, adds nothing to its events, and its log lines no ids.
    const fromC = yield* on(c, connect(trainer.token))
    const untraced = yield* fromC.request("sendMessage", { conversationId, content: "from C", clientMessageId: "c1" })
    expect(untraced.event).toBe("ack")
    yield* reader.next(is("newMessage", (m) => m.id === untraced.data.message.id))
    expect(yield* on(c, Effect.flatMap(TestServer, (server) => server.request("GET", "/health")))).toMatchObject({ status: 200 })
    yield* Effect.sleep("1 second")
    const published = raw.find((text) => text.includes(untraced.data.message.id))
    expect(published).toBeDefined()
    expect(published).not.toContain("traceparent")
    expect(untracedReceiver.requests).toEqual([])
    expect(receiver.spans.filter((s) => s.service === "chat-c")).toEqual([])
    expect(logsOfC.filter((line) => line.includes("traceId"))).toEqual([])
    expect(logsOfC.length).toBeGreaterThan(0)
  }).pipe(Effect.scoped, Effect.provide(Logger.minimumLogLevel(LogLevel.Warning))), 120_000)
