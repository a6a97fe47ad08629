import { Config, Context, Effect, FiberRef, FiberRefs, HashMap, Layer, Logger, LogLevel, Option, Tracer } from "effect"

/**
 * Inside a span that is exported (not the no-op spans of a disabled tracer), a line carries its `traceId` and
 * `spanId` as fields beside the other annotations.
 */
const withTraceIds = <Output>(logger: Logger.Logger<unknown, Output>) =>
  Logger.mapInputOptions(logger, (options: Logger.Logger.Options<unknown>) => {
    const span = Context.getOption(FiberRefs.getOrDefault(options.context, FiberRef.currentContext), Tracer.ParentSpan)
    if (Option.isNone(span) || Context.get(span.value.context, Tracer.DisablePropagation)) return options
    return {
      ...options,
      annotations: HashMap.set(HashMap.set(options.annotations, "traceId", span.value.traceId), "spanId", span.value.spanId)
    }
  })

/**
 * Pretty logs for people in development, one JSON object per line for log
 * collectors in production (or with `LOG_FORMAT=json`); `LOG_LEVEL` filters.
 */
export const layer = Layer.unwrapEffect(
  Effect.gen(function*() {
    const nodeEnv = yield* Config.string("NODE_ENV").pipe(Config.withDefault("development"))
    const format = yield* Config.literal("pretty", "json", "logfmt")("LOG_FORMAT").pipe(
      Config.withDefault(nodeEnv === "production" ? "json" as const : "pretty" as const)
    )
    const level = yield* Config.logLevel("LOG_LEVEL").pipe(Config.withDefault(LogLevel.Info))
    const logger = format === "json"
      ? Logger.withConsoleLog(Logger.jsonLogger)
      : format === "logfmt"
      ? Logger.withConsoleLog(Logger.logfmtLogger)
      : Logger.prettyLoggerDefault
    return Layer.merge(Logger.replace(Logger.defaultLogger, withTraceIds(logger)), Logger.minimumLogLevel(level))
  })
)
