import { Duration, Effect, Option } from "effect"
import { Metrics } from "../ports/Metrics.js"
import { randomUUID } from "node:crypto"
import { PresenceStore } from "../ports/PresenceStore.js"
import { sweepForever } from "../Sweeps.js"
import { type PushContext, type PushJob, PushRepo, PushSenders } from "../ports/PushRepo.js"
import type { UserId } from "../users/Model.js"
import { PushConfig, WebPushConfig } from "./Config.js"
import { isPrivateHost } from "./Endpoints.js"
import {
  type DeviceId,
  DeviceNotFound,
  inQuietHours,
  type Notification,
  NotificationSettings,
  type Outcome,
  PrivateEndpoint,
  type RegisterDevicePayload,
  type UpdateNotificationSettings
} from "./Model.js"

/** How long to wait before attempt `n + 1` (1 s, 2 s, 4 s, … at most 30 minutes), with a little jitter. */
export const backoffMs = (attempts: number) =>
  Math.min(30 * 60_000, 1000 * 2 ** Math.max(0, attempts - 1)) * (0.9 + Math.random() * 0.2)

/** What a push says, from what the job found. */
export const notificationOf = (job: PushJob, ctx: PushContext, now: Date): Notification => {
  const count = Math.max(1, ctx.unread)
  const from = ctx.senderName
  return {
    title: from,
    body: ctx.settings.preview && ctx.lastPreview !== null
      ? ctx.lastPreview
      : count === 1
      ? `New message from ${from}`
      : `${count} new messages from ${from}`,
    badge: ctx.badge,
    silent: inQuietHours(ctx.settings.quietHours, now),
    data: { type: "newMessage", conversationId: job.conversationId, seq: ctx.lastSeq, count }
  }
}

/**
 * Push notifications to devices whose user has no open socket: devices and settings for their owners, and
 * the runner that sends the jobs the message append wrote (`append_messages_v3`) when they are due.
 */
export class Push extends Effect.Service<Push>()("Push/Push", {
  scoped: Effect.gen(function*() {
    const repo = yield* PushRepo
    const metrics = yield* Metrics
    const senders = yield* PushSenders
    const presence = yield* PresenceStore
    const config = yield* PushConfig
    const web = yield* WebPushConfig
    const owner = randomUUID()
    const delayMs = Duration.toMillis(config.delay)
    const coalesceMs = Duration.toMillis(config.coalesce)
    const leaseMs = Duration.toMillis(config.lease)

    const registerDevice = Effect.fn("Push.registerDevice")(function*(userId: UserId, d: RegisterDevicePayload) {
      if (
        d.subscription !== undefined && !web.allowPrivateEndpoints && isPrivateHost(new URL(d.subscription.endpoint).hostname)
      ) return yield* Effect.fail(new PrivateEndpoint())
      return yield* repo.registerDevice(userId, {
        platform: d.platform,
        token: d.platform === "webpush" ? d.subscription!.endpoint : d.token!,
        p256dh: d.subscription?.keys.p256dh ?? null,
        auth: d.subscription?.keys.auth ?? null,
        appVersion: d.appVersion ?? null,
        locale: d.locale ?? null
      }, Math.max(1, config.maxDevicesPerUser))
    })

    const removeDevice = Effect.fn("Push.removeDevice")(function*(userId: UserId, id: DeviceId) {
      if (!(yield* repo.removeDevice(userId, id))) return yield* Effect.fail(new DeviceNotFound({ id }))
    })

    const updateSettings = Effect.fn("Push.updateSettings")(function*(userId: UserId, patch: UpdateNotificationSettings) {
      const current = yield* repo.settings(userId)
      return yield* repo.saveSettings(
        userId,
        new NotificationSettings({
          preview: patch.preview ?? current.preview,
          quietHours: patch.quietHours === undefined ? current.quietHours : patch.quietHours,
          mutedConversations: patch.mutedConversations === undefined
            ? current.mutedConversations
            : [...new Set(patch.mutedConversations)]
        })
      )
    })

    type Done = { readonly job: PushJob; readonly sent: boolean; readonly coveredSeq: number }

    /**
     * One due job, decided on what was read for it: done (sent, or nothing to send), postponed for coalescing,
     * retried, or buried. What is done is returned, to be finished with the others in one statement.
     */
    const run = (job: PushJob, ctx: PushContext | undefined, viewing: boolean, now: Date) =>
      Effect.gen(function*(): Effect.fn.Return<Done | undefined> {
        // The conversation or the recipient is gone.
        if (ctx === undefined) {
          metrics.pushJob("skipped")
          return { job, sent: false, coveredSeq: Number.MAX_SAFE_INTEGER }
        }
        const done = (sent: boolean): Done => {
          metrics.pushJob(sent ? "sent" : "skipped")
          return { job, sent, coveredSeq: ctx.lastSeq }
        }
        // Nothing to say: read meanwhile, not active, deactivated, muted, or shown already: a device of the
        // recipient has the conversation open (on any instance).
        if (
          ctx.unread === 0 || ctx.status !== "active" || !ctx.recipientActive || viewing ||
          ctx.settings.mutedConversations.includes(job.conversationId)
        ) return done(false)
        if (ctx.lastSentAt !== null && ctx.lastSentAt.getTime() + coalesceMs > now.getTime()) {
          yield* repo.postpone(job, new Date(ctx.lastSentAt.getTime() + coalesceMs))
          return undefined
        }
        const devices = ctx.devices.filter((d) => senders.platforms.has(d.platform) && !job.doneDevices.includes(d.id))
        if (devices.length === 0) return done(job.doneDevices.length > 0)
        const notification = notificationOf(job, ctx, now)
        const outcomes = yield* Effect.forEach(
          devices,
          (device) => Effect.map(senders.send(device, notification), (outcome) => ({ device, outcome })),
          { concurrency: 4 }
        )
        const reached = [...job.doneDevices]
        const retries: Array<Extract<Outcome, { _tag: "Retry" }>> = []
        for (const { device, outcome } of outcomes) {
          switch (outcome._tag) {
            case "Delivered":
              reached.push(device.id)
              break
            case "Gone":
              yield* Effect.logInfo("Push token gone: device removed").pipe(
                Effect.annotateLogs({ deviceId: device.id, platform: device.platform, reason: outcome.reason })
              )
              yield* repo.forgetDevice(device.id)
              break
            case "Retry":
              retries.push(outcome)
              break
            case "Failed":
              yield* Effect.logWarning("Push refused by the provider").pipe(
                Effect.annotateLogs({ deviceId: device.id, platform: device.platform, reason: outcome.reason })
              )
          }
        }
        if (retries.length === 0) return done(reached.length > 0)
        const error = retries.map((r) => r.reason).join("; ")
        if (job.attempts >= config.maxAttempts) {
          yield* Effect.logWarning("Push job given up").pipe(Effect.annotateLogs({ jobId: job.id, attempts: job.attempts, error }))
          yield* repo.bury(job, error)
          metrics.pushJob("dead")
          return undefined
        }
        const wait = Math.max(backoffMs(job.attempts), ...retries.map((r) => r.afterMs ?? 0))
        yield* repo.retry(job, new Date(Date.now() + wait), reached, error)
        metrics.pushJob("retried")
        return undefined
      }).pipe(
        Effect.catchAllCause((cause) =>
          Effect.as(Effect.logWarning("Push job failed; it is claimed again after its lease", cause), undefined)
        ),
        Effect.annotateLogs({ pushJob: job.id })
      )

    const batch = 32

    /**
     * Claims up to 32 due jobs, reads what they are decided on and who is online in one go each, runs them, and
     * finishes those that are done in one statement; true when it found a full batch (more may be waiting).
     */
    // Jobs done whose finish failed (the database went away after the sends): finished first next time, instead of
    // staying claimed until their lease runs out and being pushed again.
    let unfinished: ReadonlyArray<Done> = []

    const sweep = Effect.gen(function*() {
      if (unfinished.length > 0) {
        yield* repo.finish(unfinished, { delayMs, coalesceMs })
        unfinished = []
      }
      const jobs = yield* repo.claim(owner, batch, leaseMs)
      if (jobs.length === 0) return false
      const [contexts, viewing] = yield* Effect.all([repo.contexts(jobs), presence.viewing(jobs)])
      const now = new Date()
      const done = yield* Effect.forEach(
        jobs,
        (job, i) => run(job, contexts.get(job.id), viewing[i] === true, now),
        { concurrency: 8 }
      )
      unfinished = done.filter((d): d is Done => d !== undefined)
      yield* repo.finish(unfinished, { delayMs, coalesceMs })
      unfinished = []
      return jobs.length === batch
    })

    if (senders.platforms.size > 0) {
      yield* sweepForever({ name: "Push", sweep, poll: config.poll }).pipe(Effect.interruptible, Effect.forkScoped)
    }

    return {
      platforms: senders.platforms,
      webPushKey: Option.isSome(web.publicKey) && senders.platforms.has("webpush")
        ? Option.some(web.publicKey.value)
        : Option.none<string>(),
      registerDevice,
      listDevices: (userId: UserId) => repo.listDevices(userId),
      removeDevice,
      settings: (userId: UserId) => repo.settings(userId),
      updateSettings,
      dead: repo.dead,
      /** Runs what is due now (tests, and an instance that wants to drain before it stops). */
      sweep
    } as const
  })
}) {}
