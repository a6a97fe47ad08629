import { Duration, Effect, Layer } from "effect"
import * as Http from "node:http"
import * as Https from "node:https"
import { WebhookSender } from "../../domain/ports/WebhooksRepo.js"
import { isPrivateHost } from "../../domain/push/Endpoints.js"
import { WebhookConfig } from "../../domain/webhooks/Config.js"
import type { Attempt } from "../../domain/webhooks/Model.js"
import { retryAfterMs } from "../push/Outcomes.js"
import { PrivateAddressRefused, safeLookup } from "../push/SafeLookup.js"

/** Why a request got no answer, in words an admin reading the deliveries log understands. */
const reasonOf = (error: NodeJS.ErrnoException): string =>
  error.code === PrivateAddressRefused
    ? "refused: the URL resolves to a private address"
    : error.code === "ECONNREFUSED"
    ? "connection refused"
    : error.code === "ENOTFOUND"
    ? "host not found"
    : error.code === "ETIMEDOUT" || error.code === "WEBHOOK_TIMEOUT"
    ? "timed out"
    : `${error.code ?? "error"}: ${error.message}`.slice(0, 300)

/**
 * Posts with Node's own clients over keep-alive agents. Redirects are not followed (a 3xx is a failure: the
 * receiver must give its final URL); names resolving to private addresses are refused at connect time, and
 * private IP literals before, unless `WEBHOOK_ALLOW_PRIVATE_URLS` is set. The answer's body is read and dropped.
 */
export const layer = Layer.scoped(
  WebhookSender,
  Effect.gen(function*() {
    const config = yield* WebhookConfig
    const timeoutMs = Duration.toMillis(config.timeout)
    const options = {
      keepAlive: true,
      maxSockets: 16,
      ...(config.allowPrivateUrls ? {} : { lookup: safeLookup })
    }
    const agents = { http: new Http.Agent(options), https: new Https.Agent(options) }
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        agents.http.destroy()
        agents.https.destroy()
      })
    )

    // A plain callback, no promise or abort signal per request: an instance may post thousands a second.
    const post = (
      url: URL,
      headers: Readonly<Record<string, string>>,
      body: string,
      settle: (attempt: Attempt) => void
    ): Http.ClientRequest | undefined => {
      const started = performance.now()
      // The whole exchange, not only each idle gap, is bounded by WEBHOOK_TIMEOUT.
      let timer: ReturnType<typeof setTimeout> | undefined
      const resolve = (attempt: Attempt) => {
        clearTimeout(timer)
        settle(attempt)
      }
      const latencyMs = () => Math.round(performance.now() - started)
      const fail = (error: string, status: number | null = null, afterMs?: number) =>
        resolve({ _tag: "Failed", status, latencyMs: latencyMs(), error, ...(afterMs === undefined ? {} : { afterMs }) })
      if (!config.allowPrivateUrls && isPrivateHost(url.hostname)) {
        fail("refused: the URL names a private address")
        return undefined
      }
      const client = url.protocol === "https:" ? Https : Http
      const request: Http.ClientRequest = client.request(url, {
        method: "POST",
        agent: url.protocol === "https:" ? agents.https : agents.http,
        headers: { ...headers, "content-length": String(Buffer.byteLength(body)) },
        timeout: timeoutMs
      }, (response) => {
        const status = response.statusCode ?? 0
        response.on("error", () => {})
        response.resume()
        response.on("end", () => {
          if (status >= 200 && status < 300) return resolve({ _tag: "Delivered", status, latencyMs: latencyMs() })
          if (status >= 300 && status < 400) return fail(`redirect not followed (HTTP ${status})`, status)
          const after = status === 429 || status === 503
            ? retryAfterMs(response.headers["retry-after"] as string | undefined)
            : undefined
          fail(`HTTP ${status}`, status, after)
        })
      })
      timer = setTimeout(
        () => request.destroy(Object.assign(new Error("timed out"), { code: "WEBHOOK_TIMEOUT" })),
        timeoutMs
      )
      request.on("timeout", () => request.destroy(Object.assign(new Error("timed out"), { code: "WEBHOOK_TIMEOUT" })))
      request.on("error", (error: NodeJS.ErrnoException) => fail(reasonOf(error)))
      request.end(body)
      return request
    }

    return WebhookSender.of({
      send: (url, headers, body) =>
        Effect.async<Attempt>((resume) => {
          let done = false
          const settle = (attempt: Attempt) => {
            if (done) return
            done = true
            resume(Effect.succeed(attempt))
          }
          try {
            const request = post(new URL(url), headers, body, settle)
            // Interrupted (the instance stops): the request goes with it.
            return Effect.sync(() => request?.destroy())
          } catch (error) {
            settle({ _tag: "Failed", status: null, latencyMs: 0, error: String(error).slice(0, 300) })
          }
        })
    })
  })
)
