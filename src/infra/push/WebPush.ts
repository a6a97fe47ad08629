import { Effect, Redacted } from "effect"
import * as Https from "node:https"
import webpush from "web-push"
import { isPrivateAddress } from "../../domain/push/Endpoints.js"
import type { Device, Notification, Outcome } from "../../domain/push/Model.js"
import { retryAfterMs } from "./Outcomes.js"
import { PrivateAddressRefused, safeLookup } from "./SafeLookup.js"

export interface WebPushKeys {
  readonly publicKey: string
  readonly privateKey: Redacted.Redacted<string>
  readonly subject: string
  /** Endpoints on private addresses allowed (otherwise refused, also when a public name resolves to one). */
  readonly allowPrivateEndpoints: boolean
}

/**
 * Web Push through `web-push`: the payload encrypted for the subscription (RFC 8291, aes128gcm) and the
 * request signed with VAPID (RFC 8292). 404/410: the subscription is gone.
 */
export const make = (keys: WebPushKeys) => {
  const vapidDetails = { subject: keys.subject, publicKey: keys.publicKey, privateKey: Redacted.value(keys.privateKey) }
  // Checked once at start: a malformed key is a configuration error, not a failed push.
  webpush.getVapidHeaders("https://push.example", keys.subject, keys.publicKey, vapidDetails.privateKey, "aes128gcm")
  // Connections to the push services are kept alive (a TLS handshake per push would cost more than the push),
  // trusting what the default agent trusts.
  const agent = new Https.Agent({
    keepAlive: true,
    maxSockets: 16,
    ca: Https.globalAgent.options.ca,
    ...(keys.allowPrivateEndpoints ? {} : { lookup: safeLookup })
  })
  // An address is refused here; a name, when it is resolved (registration refused the obvious ones already).
  const refused = (device: Device) => {
    try {
      return !keys.allowPrivateEndpoints && isPrivateAddress(new URL(device.token).hostname)
    } catch {
      return true
    }
  }
  return (device: Device, notification: Notification): Effect.Effect<Outcome> =>
    refused(device) ? Effect.succeed({ _tag: "Gone", reason: "web push endpoint is not a public address" }) : Effect.tryPromise(() =>
      webpush.sendNotification(
        { endpoint: device.token, keys: { p256dh: device.p256dh ?? "", auth: device.auth ?? "" } },
        JSON.stringify(notification),
        { vapidDetails, TTL: 24 * 60 * 60, urgency: notification.silent ? "low" : "high", timeout: 10_000, agent }
      )
    ).pipe(
      Effect.as<Outcome>({ _tag: "Delivered" }),
      Effect.catchAll(({ error }): Effect.Effect<Outcome> => {
        const e = error as { statusCode?: number; headers?: Record<string, string>; body?: string; message?: string; code?: string }
        if (e.code === PrivateAddressRefused) return Effect.succeed({ _tag: "Gone", reason: "web push endpoint resolves to a private address" })
        const status = e.statusCode
        if (status === 404 || status === 410) return Effect.succeed({ _tag: "Gone", reason: `web push ${status}` })
        if (status === undefined || status === 429 || status >= 500) {
          return Effect.succeed({
            _tag: "Retry",
            reason: status === undefined ? `web push: ${e.message ?? "request failed"}` : `web push ${status}`,
            afterMs: retryAfterMs(e.headers?.["retry-after"])
          })
        }
        return Effect.succeed({ _tag: "Failed", reason: `web push ${status}: ${String(e.body ?? "").slice(0, 200)}` })
      })
    )
}
