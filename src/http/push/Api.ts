import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as OpenApi from "@effect/platform/OpenApi"
import { Schema } from "effect"
import { ConversationId } from "../../domain/chat/Model.js"
import { Forbidden, message } from "../../domain/Errors.js"
import {
  DeviceId,
  DeviceJson,
  DeviceNotFound,
  NotificationSettings,
  PrivateEndpoint,
  RegisterDevicePayload,
  UpdateNotificationSettings
} from "../../domain/push/Model.js"
import { UserId } from "../../domain/users/Model.js"
import { Page, pageParams, strict } from "../Schemas.js"
import { Authentication } from "../Security.js"

export class DeviceRegistered extends Schema.Class<DeviceRegistered>("DeviceRegistered")(DeviceJson.fields) {}

export class WebPushKey extends Schema.Class<WebPushKey>("WebPushKey")({
  /** The VAPID public key (base64url), for `pushManager.subscribe({ applicationServerKey })`. */
  publicKey: Schema.String
}) {}

export class WebPushOff extends Schema.TaggedError<WebPushOff>()(
  "WebPushOff",
  { message: message("Web Push is not configured on this server") },
  HttpApiSchema.annotations({ status: 404 })
) {}

export const DeadPushJob = Schema.Struct({
  id: Schema.String,
  conversationId: ConversationId,
  userId: UserId,
  attempts: Schema.Int,
  lastError: Schema.NullOr(Schema.String),
  createdAt: Schema.DateTimeUtc,
  updatedAt: Schema.DateTimeUtc
}).annotations({ identifier: "DeadPushJob" })

const id = HttpApiSchema.param("id", DeviceId)

export class PushApi extends HttpApiGroup.make("push")
  .add(
    HttpApiEndpoint.post("registerDevice", "/devices")
      .setPayload(RegisterDevicePayload)
      .addSuccess(DeviceRegistered, { status: 201 })
      .addSuccess(DeviceJson)
      .addError(PrivateEndpoint)
      .annotate(
        OpenApi.Summary,
        "Register this device for push (201; the same token again: 200, moved to the caller if another user had it). " +
          "Beyond PUSH_MAX_DEVICES_PER_USER the caller's least recently registered devices are removed"
      )
  )
  .add(
    HttpApiEndpoint.get("listDevices", "/devices")
      .addSuccess(Schema.Array(DeviceJson))
      .annotate(OpenApi.Summary, "The caller's devices")
  )
  .add(
    HttpApiEndpoint.get("webPushKey", "/devices/webpush-key")
      .addSuccess(WebPushKey)
      .addError(WebPushOff)
      .annotate(OpenApi.Summary, "The VAPID public key browsers subscribe with (404 when Web Push is off)")
  )
  .add(
    HttpApiEndpoint.del("removeDevice")`/devices/${id}`
      .addSuccess(HttpApiSchema.NoContent)
      .addError(DeviceNotFound)
      .annotate(OpenApi.Summary, "Stop pushing to one of the caller's devices (sign-out on that device)")
  )
  .add(
    HttpApiEndpoint.get("notificationSettings", "/users/me/notifications")
      .addSuccess(NotificationSettings)
      .annotate(OpenApi.Summary, "The caller's notification settings")
  )
  .add(
    HttpApiEndpoint.put("updateNotificationSettings", "/users/me/notifications")
      .setPayload(UpdateNotificationSettings)
      .addSuccess(NotificationSettings)
      .annotate(
        OpenApi.Summary,
        "Change the caller's notification settings (fields left out keep their value; quietHours: null removes them)"
      )
  )
  .add(
    HttpApiEndpoint.get("deadPushJobs", "/admin/push/dead")
      .setUrlParams(Schema.Struct(pageParams).annotations(strict))
      .addSuccess(Page("DeadPushJobPage", DeadPushJob))
      .addError(Forbidden)
      .annotate(OpenApi.Summary, "Push jobs given up after PUSH_MAX_ATTEMPTS, newest first (admin)")
  )
  .middleware(Authentication)
  .annotate(OpenApi.Title, "Push notifications")
{}
