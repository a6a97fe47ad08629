import { Config, Duration, Option } from "effect"

const optionalString = (name: string) => Config.option(Config.nonEmptyString(name))

/** Web Push with VAPID (RFC 8292): on when all three are set. */
export const WebPushConfig = Config.all({
  publicKey: optionalString("PUSH_VAPID_PUBLIC_KEY"),
  privateKey: Config.option(Config.redacted(Config.nonEmptyString("PUSH_VAPID_PRIVATE_KEY"))),
  subject: optionalString("PUSH_VAPID_SUBJECT"),
  /** Endpoints on loopback or private addresses accepted (tests, a push service inside the network). */
  allowPrivateEndpoints: Config.boolean("PUSH_ALLOW_PRIVATE_ENDPOINTS").pipe(Config.withDefault(false))
})

/** FCM HTTP v1 with a service account: on when the file is set. */
export const FcmConfig = Config.all({
  serviceAccountFile: optionalString("PUSH_FCM_SERVICE_ACCOUNT_FILE"),
  endpoint: Config.string("PUSH_FCM_ENDPOINT").pipe(Config.withDefault("https://fcm.googleapis.com"))
})

/** APNs over HTTP/2 with a provider token: on when the key file is set (with its id, team and topic). */
export const ApnsConfig = Config.all({
  keyFile: optionalString("PUSH_APNS_KEY_FILE"),
  keyId: optionalString("PUSH_APNS_KEY_ID"),
  teamId: optionalString("PUSH_APNS_TEAM_ID"),
  topic: optionalString("PUSH_APNS_TOPIC"),
  endpoint: Config.string("PUSH_APNS_ENDPOINT").pipe(Config.withDefault("https://api.push.apple.com"))
})

/** When and how often pushes go. */
export const PushConfig = Config.all({
  delay: Config.duration("PUSH_DELAY").pipe(Config.withDefault(Duration.seconds(3))),
  coalesce: Config.duration("PUSH_COALESCE").pipe(Config.withDefault(Duration.seconds(30))),
  maxAttempts: Config.integer("PUSH_MAX_ATTEMPTS").pipe(Config.withDefault(10)),
  maxDevicesPerUser: Config.integer("PUSH_MAX_DEVICES_PER_USER").pipe(Config.withDefault(10)),
  /** A claimed job whose instance died is claimed again after this. */
  lease: Config.duration("PUSH_LEASE").pipe(Config.withDefault(Duration.seconds(60))),
  /** How often an idle instance looks for due jobs. */
  poll: Config.duration("PUSH_POLL_INTERVAL").pipe(Config.withDefault(Duration.millis(500)))
})
export type PushConfig = Config.Config.Success<typeof PushConfig>

/** Whether any provider is configured: without one no job is written (the append skips the outbox). */
export const PushEnabled = Config.all([WebPushConfig, FcmConfig, ApnsConfig]).pipe(
  Config.map(([web, fcm, apns]) =>
    (Option.isSome(web.publicKey) && Option.isSome(web.privateKey) && Option.isSome(web.subject)) ||
    Option.isSome(fcm.serviceAccountFile) || Option.isSome(apns.keyFile)
  )
)
