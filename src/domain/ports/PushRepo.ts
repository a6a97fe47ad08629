import { Context, type Effect } from "effect"
import type { ConversationId, ConversationStatus } from "../chat/Model.js"
import type { Device, DeviceId, Notification, NotificationSettings, Outcome, Platform } from "../push/Model.js"
import type { UserId } from "../users/Model.js"

/** A device to register: everything but what the store gives it. */
export type NewDevice = Omit<Device, "id" | "userId" | "createdAt">

/** A pending push for one conversation and recipient, claimed by this instance until `lockedUntil`. */
export interface PushJob {
  readonly id: string
  readonly conversationId: ConversationId
  readonly userId: UserId
  readonly seq: number
  readonly attempts: number
  readonly doneDevices: ReadonlyArray<DeviceId>
}

/** What a due job is decided on, read in one go. */
export interface PushContext {
  readonly status: ConversationStatus
  readonly recipientActive: boolean
  /** The conversation's last seq when read: the job covers the messages up to it. */
  readonly lastSeq: number
  /** Unread messages of the recipient in this conversation, and in all of theirs. */
  readonly unread: number
  readonly badge: number
  readonly senderName: string
  readonly lastPreview: string | null
  readonly settings: NotificationSettings
  readonly lastSentAt: Date | null
  readonly devices: ReadonlyArray<Device>
}

export interface DeadJob {
  readonly id: string
  readonly conversationId: ConversationId
  readonly userId: UserId
  readonly attempts: number
  readonly lastError: string | null
  readonly createdAt: Date
  readonly updatedAt: Date
}

/**
 * Devices, notification settings and the push outbox. Jobs are written by the message append itself
 * (`append_messages_v3`); instances claim due ones with a lease, so each is sent by one of them, and a
 * claimed job whose instance died is claimed again once its lease runs out.
 */
export class PushRepo extends Context.Tag("Ports/PushRepo")<PushRepo, {
  /**
   * Registers a device for `userId` (the same token again: updated, and moved to `userId` if another user
   * had it); the user's oldest devices beyond `max` are removed. `created` is false for a known token.
   */
  readonly registerDevice: (
    userId: UserId,
    device: NewDevice,
    max: number
  ) => Effect.Effect<{ readonly device: Device; readonly created: boolean }>
  readonly listDevices: (userId: UserId) => Effect.Effect<ReadonlyArray<Device>>
  /** Removes one of the user's devices; false when they have none of that id. */
  readonly removeDevice: (userId: UserId, id: DeviceId) => Effect.Effect<boolean>
  /** Removes a device whose token the provider declared dead. */
  readonly forgetDevice: (id: DeviceId) => Effect.Effect<void>
  readonly settings: (userId: UserId) => Effect.Effect<NotificationSettings>
  readonly saveSettings: (userId: UserId, settings: NotificationSettings) => Effect.Effect<NotificationSettings>

  /** Claims up to `limit` due jobs for `lease` milliseconds (each claim counts as an attempt). */
  readonly claim: (owner: string, limit: number, leaseMs: number) => Effect.Effect<ReadonlyArray<PushJob>>
  /** What each job is decided on, by job id; a job missing from the map: its conversation or recipient is gone. */
  readonly contexts: (jobs: ReadonlyArray<PushJob>) => Effect.Effect<ReadonlyMap<string, PushContext>>
  /**
   * The jobs are done (`sent`: a push went out, which coalescing counts from), in one statement. Messages that
   * came after a job's `coveredSeq` keep it, rescheduled after `delayMs` and after the coalescing window.
   */
  readonly finish: (
    done: ReadonlyArray<{ readonly job: PushJob; readonly sent: boolean; readonly coveredSeq: number }>,
    timing: { readonly delayMs: number; readonly coalesceMs: number }
  ) => Effect.Effect<void>
  /** Back to waiting until `runAt`, not counted as an attempt (a coalescing window still open). */
  readonly postpone: (job: PushJob, runAt: Date) => Effect.Effect<void>
  /** Retried at `runAt`; `doneDevices` were reached and are not pushed again. */
  readonly retry: (job: PushJob, runAt: Date, doneDevices: ReadonlyArray<DeviceId>, error: string) => Effect.Effect<void>
  /** Given up: kept as dead for admins to see. */
  readonly bury: (job: PushJob, error: string) => Effect.Effect<void>
  readonly dead: (limit: number, offset: number) => Effect.Effect<{ readonly items: ReadonlyArray<DeadJob>; readonly total: number }>
}>() {}

/** Sends one notification to one device of a platform whose provider is configured. */
export class PushSenders extends Context.Tag("Ports/PushSenders")<PushSenders, {
  /** The platforms with a configured provider; a device of another platform is not pushed to. */
  readonly platforms: ReadonlySet<Platform>
  readonly send: (device: Device, notification: Notification) => Effect.Effect<Outcome>
}>() {}
