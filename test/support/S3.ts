import { Effect, type Scope } from "effect"
import S3rver from "s3rver"
import { tempDir } from "./TempDir.js"

/**
 * A local S3-compatible server (s3rver) on a free port with one bucket, stopped with the scope.
 * Returns the settings that point the app's S3 storage layer at it.
 */
export interface LocalS3 {
  readonly S3_BUCKET: string
  readonly S3_ENDPOINT: string
  readonly S3_ACCESS_KEY_ID: string
  readonly S3_SECRET_ACCESS_KEY: string
}

export const localS3 = (bucket = "attachments"): Effect.Effect<LocalS3, never, Scope.Scope> =>
  Effect.gen(function*() {
    const directory = yield* tempDir("s3rver-")
    const server = new S3rver({ address: "127.0.0.1", port: 0, silent: true, directory, configureBuckets: [{ name: bucket }] })
    const address = yield* Effect.acquireRelease(Effect.promise(() => server.run()), () => Effect.promise(() => server.close()))
    return {
      S3_BUCKET: bucket,
      S3_ENDPOINT: `http://127.0.0.1:${address.port}`,
      S3_ACCESS_KEY_ID: "S3RVER",
      S3_SECRET_ACCESS_KEY: "S3RVER"
    }
  })
