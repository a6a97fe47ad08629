import { FetchHttpClient, HttpApiClient, HttpClient, HttpClientRequest } from "@effect/platform"
import { ConfigProvider, Context, Effect, Layer, Logger, LogLevel } from "effect"
import { Api } from "../../src/http/Api.js"
import { AppLive } from "../../src/main.js"
import { Listener } from "../../src/server/Listener.js"
import { freshDatabase, freshRedis } from "./Database.js"
import { tempDir } from "./TempDir.js"

export const admin = { email: "admin@test.local", password: "admin-password-1" } as const
export const jwtSecret = "test-secret-0123456789abcdef0123456789abcdef"

export interface Reply {
  readonly status: number
  readonly headers: Headers
  readonly body: any
}

export interface RequestOptions {
  readonly token?: string
  readonly body?: unknown
  /** Sent as is, instead of `body` as JSON. */
  readonly raw?: string
  readonly headers?: Record<string, string>
}

/** The running server, reached over a real socket. */
export class TestServer extends Context.Tag("Test/TestServer")<TestServer, {
  readonly url: string
  readonly request: (method: string, path: string, options?: RequestOptions) => Effect.Effect<Reply>
  /** A typed client derived from the API contract, signed in when given a token. */
  readonly client: (token?: string) => Effect.Effect<ApiClient>
}>() {}

type ApiClient = Effect.Effect.Success<ReturnType<typeof makeClient>>
const makeClient = (baseUrl: string, token?: string) =>
  HttpApiClient.make(Api, {
    baseUrl,
    transformClient: token === undefined ? undefined : HttpClient.mapRequest(HttpClientRequest.bearerToken(token))
  }).pipe(Effect.provide(FetchHttpClient.layer))

/** A TestServer for a server already listening at `url` (another process, say). */
export const serverAt = (url: string) => {
  const request = (method: string, path: string, options: RequestOptions = {}) =>
    Effect.promise(async (): Promise<Reply> => {
      const headers: Record<string, string> = { ...options.headers }
      if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`
      let body: string | undefined = options.raw
      if (options.body !== undefined) {
        body = JSON.stringify(options.body)
        headers["content-type"] ??= "application/json"
      }
      const response = await fetch(url + path, { method, headers, ...(body === undefined ? {} : { body }) })
      const text = await response.text()
      let parsed: unknown = text
      try {
        parsed = text === "" ? null : JSON.parse(text)
      } catch {
        // not JSON: keep the text
      }
      return { status: response.status, headers: response.headers, body: parsed }
    })
  return TestServer.of({ url, request, client: (token) => makeClient(url, token) })
}

const TestServerLive = Layer.effect(
  TestServer,
  Effect.map(Listener, (listener) => serverAt(`http://127.0.0.1:${listener.port}`))
)

/**
 * The whole product as `main.ts` composes it, on a fresh database chosen by
 * the environment, listening on a free port. `config` overrides settings.
 */
export const layer = (config: Record<string, string> = {}, options: { readonly logs?: Array<string> } = {}) =>
  Layer.unwrapScoped(
    Effect.gen(function*() {
      const database = yield* freshDatabase
      const redis = yield* freshRedis
      // Attachments on disk go to a directory of the suite's own, whatever the database.
      const storage = yield* tempDir("chat-files-")
      const provider = ConfigProvider.fromMap(
        new Map(Object.entries({
          PORT: "0",
          HOST: "127.0.0.1",
          // Metrics off unless a test asks for them (a fixed port would be shared by every suite).
          METRICS_PORT: "0",
          NODE_ENV: "test",
          JWT_SECRET: jwtSecret,
          ADMIN_EMAIL: admin.email,
          ADMIN_PASSWORD: admin.password,
          AUTH_RATE_LIMIT_PER_IP: "100000",
          AUTH_RATE_LIMIT_PER_EMAIL: "100000",
          SEND_RATE_LIMIT: "100000",
          STORAGE_DIR: storage,
          ...database,
          ...redis,
          ...config
        }))
      )
      return TestServerLive.pipe(
        Layer.provideMerge(AppLive),
        Layer.provide(Layer.setConfigProvider(provider))
      )
    })
  ).pipe(Layer.provide(options.logs === undefined ? Logger.minimumLogLevel(LogLevel.Warning) : capture(options.logs)))

/** Every log line, as logfmt text, into `lines`, instead of the console. */
const capture = (lines: Array<string>) =>
  Layer.merge(
    Logger.replace(Logger.defaultLogger, Logger.map(Logger.logfmtLogger, (line) => void lines.push(line))),
    Logger.minimumLogLevel(LogLevel.All)
  )
