import { Effect } from "effect"
import { importPKCS8, SignJWT } from "jose"
import * as Http from "node:http"
import * as Https from "node:https"
import type { Device, Notification, Outcome } from "../../domain/push/Model.js"
import { retryAfterMs } from "./Outcomes.js"

export interface ServiceAccount {
  readonly project_id: string
  readonly client_email: string
  readonly private_key: string
  readonly private_key_id?: string
  readonly token_uri: string
}

export const readServiceAccount = (text: string): ServiceAccount => {
  const account = JSON.parse(text) as Partial<ServiceAccount>
  for (const key of ["project_id", "client_email", "private_key", "token_uri"] as const) {
    if (typeof account[key] !== "string" || account[key] === "") {
      throw new Error(`the FCM service account file has no ${key}`)
    }
  }
  return account as ServiceAccount
}

const scope = "https://www.googleapis.com/auth/firebase.messaging"

/**
 * FCM HTTP v1: an OAuth2 access token from the service account (a signed JWT assertion posted to its
 * `token_uri`, kept until shortly before it expires), then one `messages:send` per device. UNREGISTERED
 * (404): the token is gone; 429 and 5xx are retried; a 401 drops the cached token and is retried.
 */
export const make = async (account: ServiceAccount, endpoint: string) => {
  const key = await importPKCS8(account.private_key, "RS256")
  const sendUrl = `${endpoint.replace(/\/+$/, "")}/v1/projects/${encodeURIComponent(account.project_id)}/messages:send`
  let cached: { readonly token: string; readonly until: number } | undefined
  let pending: Promise<string> | undefined

  const fetchToken = async (): Promise<string> => {
    const now = Math.floor(Date.now() / 1000)
    const assertion = await new SignJWT({ scope })
      .setProtectedHeader({ alg: "RS256", typ: "JWT", ...(account.private_key_id ? { kid: account.private_key_id } : {}) })
      .setIssuer(account.client_email)
      .setSubject(account.client_email)
      .setAudience(account.token_uri)
      .setIssuedAt(now)
      .setExpirationTime(now + 3600)
      .sign(key)
    const response = await fetch(account.token_uri, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer", assertion }),
      signal: AbortSignal.timeout(10_000)
    })
    if (!response.ok) throw new Error(`FCM token endpoint answered ${response.status}`)
    const body = await response.json() as { access_token?: unknown; expires_in?: unknown }
    if (typeof body.access_token !== "string") throw new Error("FCM token endpoint answered no access_token")
    const ttl = typeof body.expires_in === "number" ? body.expires_in : 3600
    cached = { token: body.access_token, until: Date.now() + Math.max(ttl - 60, 30) * 1000 }
    return body.access_token
  }

  const accessToken = (): Promise<string> => {
    if (cached !== undefined && cached.until > Date.now()) return Promise.resolve(cached.token)
    pending ??= fetchToken().finally(() => {
      pending = undefined
    })
    return pending
  }

  const payload = (device: Device, n: Notification) => {
    const data: Record<string, string> = {
      type: n.data.type,
      conversationId: n.data.conversationId,
      seq: String(n.data.seq),
      count: String(n.data.count),
      badge: String(n.badge),
      ...(n.silent ? { silent: "true", title: n.title, body: n.body } : {})
    }
    return {
      message: {
        token: device.token,
        data,
        ...(n.silent ? {} : { notification: { title: n.title, body: n.body } }),
        android: n.silent
          ? { priority: "normal", collapse_key: n.data.conversationId }
          : { priority: "high", collapse_key: n.data.conversationId, notification: { notification_count: n.badge, tag: n.data.conversationId } },
        apns: { payload: { aps: n.silent ? { badge: n.badge, "content-available": 1 } : { badge: n.badge, sound: "default" } } }
      }
    }
  }

  // Sends go over a few kept-alive connections through node:http(s), which costs a fraction of fetch per request:
  // a busy instance sends hundreds a second.
  const url = new URL(sendUrl)
  const secure = url.protocol === "https:"
  const agent = secure
    ? new Https.Agent({ keepAlive: true, maxSockets: 16 })
    : new Http.Agent({ keepAlive: true, maxSockets: 16 })
  const post = (body: string, bearer: string) =>
    new Promise<{ status: number; retryAfter: string | undefined; text: string }>((resolve, reject) => {
      const request = (secure ? Https : Http).request(url, {
        method: "POST",
        agent,
        timeout: 10_000,
        headers: {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(body),
          authorization: `Bearer ${bearer}`
        }
      }, (response) => {
        const chunks: Array<Buffer> = []
        response.on("data", (chunk: Buffer) => chunks.push(chunk))
        response.on("end", () =>
          resolve({
            status: response.statusCode ?? 0,
            retryAfter: response.headers["retry-after"],
            text: Buffer.concat(chunks).toString("utf8")
          }))
        response.on("error", reject)
      })
      request.on("timeout", () => request.destroy(new Error("FCM did not answer in 10 s")))
      request.on("error", reject)
      request.end(body)
    })

  const send = async (device: Device, n: Notification): Promise<Outcome> => {
    const response = await post(JSON.stringify(payload(device, n)), await accessToken())
    if (response.status >= 200 && response.status < 300) return { _tag: "Delivered" }
    const text = response.text
    if (response.status === 404 || /UNREGISTERED/.test(text)) return { _tag: "Gone", reason: "FCM UNREGISTERED" }
    if (response.status === 401) {
      cached = undefined
      return { _tag: "Retry", reason: "FCM 401 (access token refreshed)", afterMs: 0 }
    }
    if (response.status === 429 || response.status >= 500) {
      return { _tag: "Retry", reason: `FCM ${response.status}`, afterMs: retryAfterMs(response.retryAfter) }
    }
    return { _tag: "Failed", reason: `FCM ${response.status}: ${text.slice(0, 200)}` }
  }

  return (device: Device, n: Notification): Effect.Effect<Outcome> =>
    Effect.tryPromise(() => send(device, n)).pipe(
      Effect.catchAll(({ error }) =>
        Effect.succeed<Outcome>({ _tag: "Retry", reason: `FCM: ${(error as Error)?.message ?? "request failed"}`, afterMs: undefined })
      )
    )
}
