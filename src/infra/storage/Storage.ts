import type * as FileSystem from "@effect/platform/FileSystem"
import { Config, type ConfigError, Effect, Layer, Option } from "effect"
import type { Storage, StorageError } from "../../domain/ports/Storage.js"
import * as Disk from "./Disk.js"

/**
 * Where attachment bytes live: S3 when `S3_BUCKET` is set (every instance sees every object),
 * otherwise the local disk under `STORAGE_DIR` or `<DATA_DIR>/attachments`. The AWS SDK is
 * loaded only for S3 (it weighs ~24 MB of memory and 200 ms of start-up).
 */
export const layer: Layer.Layer<Storage, ConfigError.ConfigError | StorageError, FileSystem.FileSystem> = Layer
  .unwrapEffect(
    Effect.flatMap(Config.option(Config.string("S3_BUCKET")), (bucket) =>
      Option.isSome(bucket)
        ? Effect.map(Effect.promise(() => import("./S3.js")), (S3) => S3.layer)
        : Effect.succeed(Disk.layer))
  )
