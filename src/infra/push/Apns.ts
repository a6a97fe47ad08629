import { Effect } from "effect"
import { importPKCS8, SignJWT } from "jose"
import http2 from "node:http2"
import type { Device, Notification, Outcome } from "../../domain/push/Model.js"
import { retryAfterMs } from "./Outcomes.js"

export interface ApnsSettings {
  /** The .p8 key's PEM text. */
  readonly key: string
  readonly keyId: string
  readonly teamId: string
  readonly topic: string
  readonly endpoint: string
}

/** APNs answers a dead token with 410, or 400 with one of these reasons. */
const goneReasons = new Set(["BadDeviceToken", "DeviceTokenNotForTopic", "Unregistered"])

/**
 * APNs over HTTP/2 with a provider token (an ES256 JWT, renewed every 40 minutes as Apple asks for between 20
 * and 60), one long-lived connection re-opened when it closes. 410 and dead-token reasons: the device goes.
 */
export const make = async (settings: ApnsSettings) => {
  const key = await importPKCS8(settings.key, "ES256")
  let token: { readonly jwt: string; readonly until: number } | undefined
  let session: http2.ClientHttp2Session | undefined

  const bearer = async () => {
    if (token !== undefined && token.until > Date.now()) return token.jwt
    const jwt = await new SignJWT({})
      .setProtectedHeader({ alg: "ES256", kid: settings.keyId })
      .setIssuer(settings.teamId)
      .setIssuedAt()
      .sign(key)
    token = { jwt, until: Date.now() + 40 * 60_000 }
    return jwt
  }

  const connection = () => {
    if (session !== undefined && !session.closed && !session.destroyed) return session
    const opened = http2.connect(settings.endpoint)
    opened.on("error", () => opened.destroy())
    opened.on("close", () => {
      if (session === opened) session = undefined
    })
    opened.on("goaway", () => opened.close())
    opened.unref()
    session = opened
    return opened
  }

  const request = (headers: http2.OutgoingHttpHeaders, body: string) =>
    new Promise<{ status: number; headers: http2.IncomingHttpHeaders; body: string }>((resolve, reject) => {
      const stream = connection().request(headers)
      stream.setTimeout(10_000, () => stream.close(http2.constants.NGHTTP2_CANCEL))
      let status = 0
      let answered: http2.IncomingHttpHeaders = {}
      const chunks: Array<Buffer> = []
      stream.on("response", (h) => {
        status = Number(h[":status"])
        answered = h
      })
      stream.on("data", (chunk: Buffer) => chunks.push(chunk))
      stream.on("end", () => resolve({ status, headers: answered, body: Buffer.concat(chunks).toString("utf8") }))
      stream.on("error", reject)
      stream.on("close", () => {
        if (status === 0) reject(new Error("APNs stream closed without an answer"))
      })
      stream.end(body)
    })

  const send = async (device: Device, n: Notification): Promise<Outcome> => {
    const aps = n.silent
      ? { badge: n.badge, "content-available": 1 }
      : { alert: { title: n.title, body: n.body }, badge: n.badge, sound: "default", "thread-id": n.data.conversationId }
    const answer = await request({
      ":method": "POST",
      ":path": `/3/device/${encodeURIComponent(device.token)}`,
      authorization: `bearer ${await bearer()}`,
      "apns-topic": settings.topic,
      "apns-push-type": n.silent ? "background" : "alert",
      "apns-priority": n.silent ? "5" : "10",
      "apns-collapse-id": n.data.conversationId,
      "apns-expiration": String(Math.floor(Date.now() / 1000) + 24 * 60 * 60),
      "content-type": "application/json"
    }, JSON.stringify({ aps, ...n.data }))
    if (answer.status === 200) return { _tag: "Delivered" }
    const reason = (() => {
      try {
        return String((JSON.parse(answer.body) as { reason?: unknown }).reason ?? "")
      } catch {
        return ""
      }
    })()
    if (answer.status === 410 || (answer.status === 400 && goneReasons.has(reason))) {
      return { _tag: "Gone", reason: `APNs ${answer.status} ${reason}` }
    }
    if (answer.status === 403 && reason === "ExpiredProviderToken") {
      token = undefined
      return { _tag: "Retry", reason: "APNs ExpiredProviderToken (token renewed)", afterMs: 0 }
    }
    if (answer.status === 429 || answer.status >= 500) {
      const after = answer.headers["retry-after"]
      return { _tag: "Retry", reason: `APNs ${answer.status} ${reason}`, afterMs: retryAfterMs(typeof after === "string" ? after : undefined) }
    }
    return { _tag: "Failed", reason: `APNs ${answer.status} ${reason}` }
  }

  return {
    send: (device: Device, n: Notification): Effect.Effect<Outcome> =>
      Effect.tryPromise(() => send(device, n)).pipe(
        Effect.catchAll(({ error }) =>
          Effect.succeed<Outcome>({ _tag: "Retry", reason: `APNs: ${(error as Error)?.message ?? "request failed"}`, afterMs: undefined })
        )
      ),
    close: () => session?.close()
  }
}
