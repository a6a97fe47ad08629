import { Config, Effect, Layer, Logger, LogLevel } from "effect"

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
    const logger = format === "json" ? Logger.json : format === "logfmt" ? Logger.logFmt : Logger.pretty
    return Layer.merge(logger, Logger.minimumLogLevel(level))
  })
)
