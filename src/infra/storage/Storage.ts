import type { FileSystem } from "@effect/platform"
import { Config, type ConfigError, Effect, Layer, Option } from "effect"
import type { Storage, StorageError } from "../../domain/ports/Storage.js"
import * as Disk from "./Disk.js"
import * as S3 from "./S3.js"

/**
 * Where attachment bytes live: S3 when `S3_BUCKET` is set (every instance sees every object),
 * otherwise the local disk under `STORAGE_DIR` or `<DATA_DIR>/attachments`.
 */
export const layer: Layer.Layer<Storage, ConfigError.ConfigError | StorageError, FileSystem.FileSystem> = Layer
  .unwrapEffect(
    Effect.map(Config.option(Config.string("S3_BUCKET")), (bucket) => Option.isSome(bucket) ? S3.layer : Disk.layer)
  )
