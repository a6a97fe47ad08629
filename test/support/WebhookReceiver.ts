import { Effect, type Scope } from "effect"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import { Webhook } from "standardwebhooks"

/** An event a receiver accepted: its signature verified with the Standard Webhooks library. */
export interface Received {
  readonly path: string
  readonly id: string
  readonly type: string
  readonly createdAt: string
  readonly data: any
  readonly headers: Http.IncomingHttpHeaders
}

export interface WebhookReceiver {
  /** `http://127.0.0.1:<port>`: a webhook's URL is this and a path of the test's choosing. */
  readonly base: string
  readonly received: Array<Received>
  /** Requests per path, answered or not. */
  readonly hits: Map<string, number>
  /** Requests whose signature did not verify (answered 401). */
  readonly rejected: Array<string>
  /** The secret each path's deliveries are verified with (set from the create answer). */
  readonly secrets: Map<string, string>
  /** Statuses to answer the next requests to a path with, before it answers 204 again; 0: never answered. */
  readonly script: Map<string, Array<number>>
}

/** A customer's webhook endpoint on loopback: verifies every delivery's signature before it accepts it. */
export const webhookReceiver: Effect.Effect<WebhookReceiver, never, Scope.Scope> = Effect.gen(function*() {
  const received: Array<Received> = []
  const hits = new Map<string, number>()
  const rejected: Array<string> = []
  const secrets = new Map<string, string>()
  const script = new Map<string, Array<number>>()
  const server = Http.createServer((request, response) => {
    const chunks: Array<Buffer> = []
    request.on("data", (c: Buffer) => chunks.push(c))
    request.on("end", () => {
      const path = request.url ?? "/"
      hits.set(path, (hits.get(path) ?? 0) + 1)
      const scripted = script.get(path)?.shift()
      if (scripted === 0) return
      if (scripted !== undefined) {
        response.writeHead(scripted, scripted >= 300 && scripted < 400 ? { location: "/redirected" } : {})
        return response.end("scripted")
      }
      const body = Buffer.concat(chunks).toString("utf8")
      const secret = secrets.get(path)
      try {
        if (secret === undefined) throw new Error("no secret for this path yet")
        if (request.method !== "POST" || request.headers["content-type"] !== "application/json") throw new Error("not a JSON POST")
        const event = new Webhook(secret).verify(body, request.headers as Record<string, string>) as any
        received.push({ path, id: event.id, type: event.type, createdAt: event.createdAt, data: event.data, headers: request.headers })
        response.writeHead(204).end()
      } catch (error) {
        rejected.push(`${path}: ${String(error)}`)
        response.writeHead(401).end()
      }
    })
  })
  yield* Effect.async<void>((resume) => {
    server.listen(0, "127.0.0.1", () => resume(Effect.void))
  })
  yield* Effect.addFinalizer(() =>
    Effect.async<void>((resume) => {
      server.closeAllConnections()
      server.close(() => resume(Effect.void))
    })
  )
  const { port } = server.address() as AddressInfo
  return { base: `http://127.0.0.1:${port}`, received, hits, rejected, secrets, script }
})
