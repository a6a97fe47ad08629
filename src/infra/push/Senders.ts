import { FileSystem } from "@effect/platform"
import { Effect, Layer, Option } from "effect"
import { PushSenders } from "../../domain/ports/PushRepo.js"
import { ApnsConfig, FcmConfig, WebPushConfig } from "../../domain/push/Config.js"
import type { Device, Notification, Outcome, Platform } from "../../domain/push/Model.js"
import * as Apns from "./Apns.js"
import * as Fcm from "./Fcm.js"
import * as WebPush from "./WebPush.js"

type Send = (device: Device, notification: Notification) => Effect.Effect<Outcome>

/** The providers that are configured; a start with a provider half configured or its key unreadable fails. */
export const layer = Layer.scoped(
  PushSenders,
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const senders = new Map<Platform, Send>()

    const web = yield* WebPushConfig
    const { privateKey, publicKey, subject } = web
    if (Option.isSome(publicKey) && Option.isSome(privateKey) && Option.isSome(subject)) {
      senders.set(
        "webpush",
        yield* Effect.try(() =>
          WebPush.make({
            publicKey: publicKey.value,
            privateKey: privateKey.value,
            subject: subject.value,
            allowPrivateEndpoints: web.allowPrivateEndpoints
          })
        )
      )
    } else if (Option.isSome(publicKey) || Option.isSome(privateKey) || Option.isSome(subject)) {
      return yield* Effect.dieMessage(
        "Web Push needs PUSH_VAPID_PUBLIC_KEY, PUSH_VAPID_PRIVATE_KEY and PUSH_VAPID_SUBJECT together"
      )
    }

    const fcm = yield* FcmConfig
    if (Option.isSome(fcm.serviceAccountFile)) {
      const text = yield* fs.readFileString(fcm.serviceAccountFile.value)
      const account = yield* Effect.try(() => Fcm.readServiceAccount(text))
      senders.set("fcm", yield* Effect.promise(() => Fcm.make(account, fcm.endpoint)))
    }

    const apns = yield* ApnsConfig
    const { keyId, teamId, topic } = apns
    if (Option.isSome(apns.keyFile)) {
      if (Option.isNone(keyId) || Option.isNone(teamId) || Option.isNone(topic)) {
        return yield* Effect.dieMessage("APNs needs PUSH_APNS_KEY_ID, PUSH_APNS_TEAM_ID and PUSH_APNS_TOPIC with its key file")
      }
      const key = yield* fs.readFileString(apns.keyFile.value)
      const sender = yield* Effect.acquireRelease(
        Effect.promise(() =>
          Apns.make({
            key,
            keyId: keyId.value,
            teamId: teamId.value,
            topic: topic.value,
            endpoint: apns.endpoint
          })
        ),
        (s) => Effect.sync(() => s.close())
      )
      senders.set("apns", sender.send)
    }

    return PushSenders.of({
      platforms: new Set(senders.keys()),
      send: (device, notification) => {
        const send = senders.get(device.platform)
        return send === undefined
          ? Effect.succeed<Outcome>({ _tag: "Failed", reason: `${device.platform} is not configured` })
          : send(device, notification)
      }
    })
  }).pipe(Effect.orDie)
)
