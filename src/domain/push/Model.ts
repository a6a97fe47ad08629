import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import { Schema } from "effect"
import { ConversationId } from "../chat/Model.js"
import { message } from "../Errors.js"
import { UserId } from "../users/Model.js"

export const DeviceId = Schema.UUID.pipe(
  Schema.brand("DeviceId"),
  Schema.annotations({ message: () => "must be a UUID" })
)
export type DeviceId = typeof DeviceId.Type

export const Platform = Schema.Literal("fcm", "apns", "webpush").annotations({
  identifier: "PushPlatform",
  message: () => "must be one of fcm, apns, webpush"
})
export type Platform = typeof Platform.Type

const Text = (max: number, what: string) =>
  Schema.String.pipe(
    Schema.filter((s) => s.length >= 1 && s.length <= max && !s.includes("\0") && s.trim() === s, {
      message: () => `${what}: 1 to ${max} characters, no surrounding spaces, without NUL`
    })
  )

const Base64Url = (what: string) =>
  Schema.String.pipe(
    Schema.filter((s) => /^[A-Za-z0-9_-]{16,200}={0,2}$/.test(s), { message: () => `${what} must be base64url` })
  )

/** The browser's `PushSubscription.toJSON()`: where to post and the keys to encrypt for (RFC 8291). */
export const WebPushSubscription = Schema.Struct({
  endpoint: Schema.String.pipe(
    Schema.filter((s) => {
      if (s.length > 2048) return false
      try {
        const url = new URL(s)
        return url.protocol === "https:"
      } catch {
        return false
      }
    }, { message: () => "must be an https URL of at most 2048 characters" })
  ),
  expirationTime: Schema.optional(Schema.NullOr(Schema.Number)),
  keys: Schema.Struct({ p256dh: Base64Url("keys.p256dh"), auth: Base64Url("keys.auth") })
}).annotations({ identifier: "WebPushSubscription" })

export class RegisterDevicePayload extends Schema.Class<RegisterDevicePayload>("RegisterDevicePayload")(
  Schema.Struct({
    platform: Platform,
    token: Schema.optionalWith(Text(4096, "token"), { exact: true }),
    subscription: Schema.optionalWith(WebPushSubscription, { exact: true }),
    appVersion: Schema.optionalWith(Text(64, "appVersion"), { exact: true }),
    locale: Schema.optionalWith(Text(35, "locale"), { exact: true })
  }).pipe(
    Schema.filter((d) =>
      d.platform === "webpush"
        ? d.subscription !== undefined && d.token === undefined
          ? undefined
          : { path: ["subscription"], message: "webpush devices carry a subscription (and no token)" }
        : d.token !== undefined && d.subscription === undefined
        ? undefined
        : { path: ["token"], message: `${d.platform} devices carry a token (and no subscription)` }
    )
  ).annotations({ parseOptions: { onExcessProperty: "error", errors: "all" } })
) {}

/** A registered device as stored. `token` is the FCM/APNs token or the Web Push endpoint. */
export interface Device {
  readonly id: DeviceId
  readonly userId: UserId
  readonly platform: Platform
  readonly token: string
  readonly p256dh: string | null
  readonly auth: string | null
  readonly appVersion: string | null
  readonly locale: string | null
  readonly createdAt: Date
}

/** A device as its owner sees it (never the token: it is a credential for pushing to them). */
export class DeviceJson extends Schema.Class<DeviceJson>("Device")({
  id: DeviceId,
  platform: Platform,
  appVersion: Schema.NullOr(Schema.String),
  locale: Schema.NullOr(Schema.String),
  createdAt: Schema.DateTimeUtc
}) {}

const ClockTime = Schema.String.pipe(
  Schema.filter((s) => /^([01]\d|2[0-3]):[0-5]\d$/.test(s), { message: () => "must be a time as HH:MM (00:00 to 23:59)" })
)

const TimeZone = Schema.String.pipe(
  Schema.filter((s) => {
    if (s.length > 64) return false
    try {
      new Intl.DateTimeFormat("en-US", { timeZone: s })
      return true
    } catch {
      return false
    }
  }, { message: () => "must be an IANA time zone such as Europe/Berlin" })
)

export const QuietHours = Schema.Struct({ start: ClockTime, end: ClockTime, timeZone: TimeZone }).annotations({
  identifier: "QuietHours",
  parseOptions: { onExcessProperty: "error", errors: "all" }
})
export type QuietHours = typeof QuietHours.Type

/** How a user is told about messages while no app of theirs is open. */
export class NotificationSettings extends Schema.Class<NotificationSettings>("NotificationSettings")(
  Schema.Struct({
    /** Show the message's text in the notification (default: only who wrote and how many). */
    preview: Schema.Boolean,
    /** Pushed silently (no sound, no alert) between these times, in this zone. */
    quietHours: Schema.NullOr(QuietHours),
    /** No push at all for these conversations. */
    mutedConversations: Schema.Array(ConversationId).pipe(Schema.maxItems(1000))
  }).annotations({ parseOptions: { onExcessProperty: "error", errors: "all" } })
) {}

export class UpdateNotificationSettings
  extends Schema.Class<UpdateNotificationSettings>("UpdateNotificationSettings")(
    Schema.Struct({
      preview: Schema.optionalWith(Schema.Boolean, { exact: true }),
      quietHours: Schema.optionalWith(Schema.NullOr(QuietHours), { exact: true }),
      mutedConversations: Schema.optionalWith(Schema.Array(ConversationId).pipe(Schema.maxItems(1000)), { exact: true })
    }).annotations({ parseOptions: { onExcessProperty: "error", errors: "all" } })
  )
{}

export const defaultSettings = new NotificationSettings({ preview: false, quietHours: null, mutedConversations: [] })

/** Whether `at` falls in the quiet hours (start inclusive, end exclusive; a span may cross midnight). */
export const inQuietHours = (quiet: QuietHours | null, at: Date): boolean => {
  if (quiet === null || quiet.start === quiet.end) return false
  const parts = new Intl.DateTimeFormat("en-GB", {
    timeZone: quiet.timeZone,
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23"
  }).formatToParts(at)
  const hour = parts.find((p) => p.type === "hour")?.value ?? "00"
  const minute = parts.find((p) => p.type === "minute")?.value ?? "00"
  const now = `${hour}:${minute}`
  return quiet.start < quiet.end ? now >= quiet.start && now < quiet.end : now >= quiet.start || now < quiet.end
}

export class DeviceNotFound extends Schema.TaggedError<DeviceNotFound>()(
  "DeviceNotFound",
  { id: DeviceId, message: message("Device not found") },
  HttpApiSchema.annotations({ status: 404 })
) {}

/** A Web Push endpoint on loopback or a private network: the server does not post there on a client's word. */
export class PrivateEndpoint extends Schema.TaggedError<PrivateEndpoint>()(
  "PrivateEndpoint",
  { message: message("The subscription's endpoint must be a public https address") },
  HttpApiSchema.annotations({ status: 400 })
) {}

/** What one push says; the senders shape it for their provider. */
export interface Notification {
  readonly title: string
  readonly body: string
  /** The recipient's unread total. */
  readonly badge: number
  /** Quiet hours: no sound, no alert. */
  readonly silent: boolean
  readonly data: {
    readonly type: "newMessage"
    readonly conversationId: ConversationId
    readonly seq: number
    readonly count: number
  }
}

/** A provider's answer for one device. */
export type Outcome =
  | { readonly _tag: "Delivered" }
  /** The token or subscription is dead (unregistered, expired): the device goes. */
  | { readonly _tag: "Gone"; readonly reason: string }
  /** Try again later (429, 5xx, a network failure), not before `afterMs` when the provider said so. */
  | { readonly _tag: "Retry"; readonly reason: string; readonly afterMs: number | undefined }
  /** Refused for good (a malformed request): no retry, the device stays. */
  | { readonly _tag: "Failed"; readonly reason: string }
