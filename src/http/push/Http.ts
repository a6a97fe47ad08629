import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { DateTime, Effect, Option } from "effect"
import { Forbidden } from "../../domain/Errors.js"
import { type Device, DeviceJson } from "../../domain/push/Model.js"
import { Push } from "../../domain/push/Push.js"
import { isAdmin } from "../../domain/users/Policy.js"
import { Api } from "../Api.js"
import { withStatus } from "../Schemas.js"
import { CurrentUser } from "../Security.js"
import { DeviceRegistered, WebPushKey, WebPushOff } from "./Api.js"

const json = (d: Device) =>
  new DeviceJson({
    id: d.id,
    platform: d.platform,
    appVersion: d.appVersion,
    locale: d.locale,
    createdAt: DateTime.unsafeFromDate(d.createdAt)
  })

// Registered answers 201 by the contract's first success schema; known already, 200.
const known = withStatus(DeviceJson, 200)

export const PushLive = HttpApiBuilder.group(Api, "push", (handlers) =>
  Effect.gen(function*() {
    const push = yield* Push

    return handlers
      .handle("registerDevice", ({ payload }) =>
        Effect.gen(function*() {
          const actor = yield* CurrentUser
          const { created, device } = yield* push.registerDevice(actor.id, payload)
          return created ? new DeviceRegistered(json(device)) : yield* known(json(device))
        }))
      .handle("listDevices", () =>
        Effect.flatMap(CurrentUser, (actor) => Effect.map(push.listDevices(actor.id), (ds) => ds.map(json))))
      .handle("webPushKey", () =>
        Option.match(push.webPushKey, {
          onNone: () => Effect.fail(new WebPushOff()),
          onSome: (publicKey) => Effect.succeed(new WebPushKey({ publicKey }))
        }))
      .handle("removeDevice", ({ path }) => Effect.flatMap(CurrentUser, (actor) => push.removeDevice(actor.id, path.id)))
      .handle("notificationSettings", () => Effect.flatMap(CurrentUser, (actor) => push.settings(actor.id)))
      .handle("updateNotificationSettings", ({ payload }) =>
        Effect.flatMap(CurrentUser, (actor) => push.updateSettings(actor.id, payload)))
      .handle("deadPushJobs", ({ urlParams }) =>
        Effect.gen(function*() {
          const actor = yield* CurrentUser
          if (!isAdmin(actor)) return yield* Effect.fail(new Forbidden())
          const { items, total } = yield* push.dead(urlParams.limit, urlParams.offset)
          return {
            items: items.map((j) => ({
              ...j,
              createdAt: DateTime.unsafeFromDate(j.createdAt),
              updatedAt: DateTime.unsafeFromDate(j.updatedAt)
            })),
            total,
            limit: urlParams.limit,
            offset: urlParams.offset
          }
        }))
  }))
