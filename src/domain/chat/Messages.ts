import { SqlClient } from "@effect/sql"
import { Config, DateTime, Duration, Effect, Either, Exit, FiberSet, Option, type Tracer } from "effect"
import { AttachmentNotFound, AttachmentUnavailable } from "../attachments/Errors.js"
import { type AttachmentId, urlOf } from "../attachments/Model.js"
import { AttachmentsRepo } from "../ports/AttachmentsRepo.js"
import { RateLimiter } from "../ports/RateLimiter.js"
import { Bus } from "../ports/Bus.js"
import { type Door, Metrics } from "../ports/Metrics.js"
import { TracingEnabled } from "../ports/Tracing.js"
import { Forbidden, type RateLimited } from "../Errors.js"
import * as GroupCommit from "../GroupCommit.js"
import { AuditLog } from "../ports/AuditLog.js"
import { ConversationsRepo } from "../ports/ConversationsRepo.js"
import { type HistoryQuery, MessagesRepo, type NewMessage } from "../ports/MessagesRepo.js"
import { PageVersions } from "../ports/PageVersions.js"
import type { User, UserId } from "../users/Model.js"
import { ConversationNotActive, ConversationNotFound, MessageNotFound } from "./Errors.js"
import type { ChatEvent } from "./Events.js"
import {
  type ConversationId,
  counterpartOf,
  type Message,
  type MessageId,
  type Participants,
  type SendableType,
  type Seq
} from "./Model.js"
import { accessOf } from "./Policy.js"

/** A send as both doors decode it (`checkSendShape` holds: text has content, image/file an attachment). */
export interface SendMessage {
  readonly conversationId: ConversationId
  readonly type: SendableType
  /** The text; for an image or file, an optional caption (the file's name when absent). */
  readonly content?: string | undefined
  readonly attachmentId?: AttachmentId | undefined
  readonly clientMessageId?: string | undefined
}

export interface Sent {
  readonly message: Message
  /** False when this was a retry of a send that already happened. */
  readonly created: boolean
}

/** Why a send is refused. */
export type SendError =
  | ConversationNotFound
  | ConversationNotActive
  | Forbidden
  | RateLimited
  | AttachmentNotFound
  | AttachmentUnavailable

/** A send on its way to a batch: the sender, its checked conversation, the row to write. */
interface Sending {
  readonly actor: User
  readonly conversationId: ConversationId
  readonly receiverId: UserId
  readonly content: string
  readonly type: SendableType
  readonly clientMessageId: string | null
  /** With tracing on: the sender's span waiting for the commit, under which its batch's steps and its publish are traced. */
  readonly span?: Tracer.AnySpan
}

const newMessageOf = (sending: Sending): NewMessage => ({
  conversationId: sending.conversationId,
  senderId: sending.actor.id,
  receiverId: sending.receiverId,
  content: sending.content,
  type: sending.type,
  clientMessageId: sending.clientMessageId,
  fileUrl: null,
  fileName: null
})

/** How many messages one user may send, over REST and WebSocket together, on every instance. */
export const SendLimitConfig = Config.all({
  max: Config.integer("SEND_RATE_LIMIT").pipe(Config.withDefault(60)),
  window: Config.duration("SEND_RATE_WINDOW").pipe(Config.withDefault(Duration.seconds(10)))
})

export class Messages extends Effect.Service<Messages>()("Chat/Messages", {
  scoped: Effect.gen(function*() {
    const conversations = yield* ConversationsRepo
    const repo = yield* MessagesRepo
    const audit = yield* AuditLog
    const bus = yield* Bus
    const metrics = yield* Metrics
    const limiter = yield* RateLimiter
    const sendLimit = yield* SendLimitConfig
    const perSender = { bucket: "send:user", max: sendLimit.max, window: sendLimit.window }
    const attachments = yield* AttachmentsRepo
    const sql = yield* SqlClient.SqlClient
    const versions = yield* PageVersions
    // Sends of conversations not seen yet, and with attachments, when submitted without a fiber.
    const runFork = yield* FiberSet.makeRuntime<never>()
    const tracing = yield* TracingEnabled

    // Who is in a conversation never changes, so the hot path need not ask the database again (a plain
    // map: this is asked on every send). Only found conversations are kept: an unknown id is asked again.
    const known = new Map<ConversationId, Participants>()
    const participantsOf = (id: ConversationId): Effect.Effect<Option.Option<Participants>> =>
      Effect.suspend(() => {
        const hit = known.get(id)
        if (hit !== undefined) return Effect.succeed(Option.some(hit))
        return Effect.map(conversations.findById(id), Option.map((c): Participants => {
          const found = { userId: c.userId, trainerId: c.trainerId }
          if (known.size >= 50_000) known.delete(known.keys().next().value!)
          known.set(id, found)
          return found
        }))
      })

    /** The conversation's participants, if the actor may touch it; strangers get not-found. */
    const access = (actor: User, id: ConversationId) =>
      Effect.flatMap(participantsOf(id), (found) => {
        const level = Option.isSome(found) ? accessOf(actor, found.value) : "none"
        return Option.isNone(found) || level === "none"
          ? Effect.fail(new ConversationNotFound({ id }))
          : Effect.succeed({ participants: found.value, level })
      })

    const participantOnly = (actor: User, id: ConversationId) =>
      Effect.flatMap(access(actor, id), ({ level, participants }) =>
        level === "participant"
          ? Effect.succeed(participants)
          : Effect.fail(new Forbidden({ message: "Only the conversation's participants can do this" })))

    /**
     * An image or file message: stored and linked to its upload in one transaction, so an upload
     * belongs to exactly one message even when two sends race for it.
     */
    const withAttachment = Effect.fnUntraced(
      function*(actor: User, command: SendMessage, attachmentId: AttachmentId, receiverId: UserId) {
        const found = yield* attachments.findById(attachmentId)
        if (Option.isNone(found) || found.value.uploaderId !== actor.id) {
          return yield* new AttachmentNotFound({ id: attachmentId })
        }
        const attachment = found.value
        if (command.type === "image" && attachment.kind !== "image") {
          return yield* new AttachmentUnavailable({ id: attachmentId, message: "An image message needs an image attachment" })
        }
        return yield* sql.withTransaction(Effect.gen(function*() {
          const appended = yield* repo.appendInTransaction({
            conversationId: command.conversationId,
            senderId: actor.id,
            receiverId,
            content: command.content ?? attachment.fileName,
            type: command.type,
            clientMessageId: command.clientMessageId ?? null,
            fileUrl: urlOf(attachment.id),
            fileName: attachment.fileName
          })
          if (appended._tag !== "Created") return appended
          const linked = yield* attachments.link({
            id: attachment.id,
            uploaderId: actor.id,
            messageId: appended.message.id,
            conversationId: command.conversationId
          })
          // Rolls the message back: the upload went to another message first.
          if (!linked) {
            return yield* new AttachmentUnavailable({ id: attachmentId, message: "The attachment belongs to another message" })
          }
          return appended
        })).pipe(Effect.catchTag("SqlError", Effect.die))
      }
    )

    /**
     * Sends without an attachment are group-committed whole: concurrent sends share one step for their rate
     * limits, one statement for their rows, one for their page versions, then each is published in order.
     * One conversation's sends go to one worker in arrival order, so they are stored and announced in order.
     * This is every message's path: a send waits on a callback, not a fiber of its own, and what it costs
     * is mostly shared with its batch.
     */
    const sends = yield* GroupCommit.make<Sending, Either.Either<Sent, SendError>, never>({
      ...(yield* GroupCommit.GroupCommitConfig),
      orderKey: (sending) => sending.conversationId,
      dedupeKey: (sending) =>
        sending.clientMessageId === null
          ? undefined
          : `${sending.conversationId}/${sending.actor.id}/${sending.clientMessageId}`,
      // A retry in the same batch as its first attempt: the first is stored, the retry gets it back.
      repeat: (answer) => Either.map(answer, (sent): Sent => ({ message: sent.message, created: false })),
      flush: (batch) => sendBatch(batch)
    })

    /** A batch's one append statement; with metrics on, its rows and its duration counted. */
    const append = (items: ReadonlyArray<NewMessage>) =>
      metrics.enabled
        ? Effect.suspend(() => {
          const began = performance.now()
          return Effect.ensuring(
            repo.appendMany(items),
            Effect.sync(() => metrics.appendBatch(items.length, (performance.now() - began) / 1000))
          )
        })
        : repo.appendMany(items)

    const sendBatch = Effect.fnUntraced(function*(batch: ReadonlyArray<Sending>) {
      const counted = yield* inBatch("Messages.rateLimit", batch, limiter.hitAll(
        perSender,
        batch.map((sending) => sending.actor.id)
      ))
      const admitted = batch.filter((_, i) => typeof counted[i] === "number")
      const appended = admitted.length === 0
        ? []
        : yield* inBatch("Messages.append", admitted, append(admitted.map(newMessageOf)))
      const touched = new Set<ConversationId>()
      for (const answer of appended) if (answer._tag !== "Rejected") touched.add(answer.message.conversationId)
      // Committed: now (and only now) the world may hear of them. A retry is announced again (its first
      // attempt's publisher may have died between its commit and its publish; subscribers deliver each seq once).
      if (touched.size > 0) yield* inBatch("Messages.pageVersions", admitted, versions.bumpAll([...touched]))
      for (let i = 0; i < appended.length; i++) {
        const answer = appended[i]!
        if (answer._tag !== "Rejected") yield* publishAs(admitted[i]!, { _tag: "MessageCreated", message: answer.message })
      }
      const answers: Array<Either.Either<Sent, SendError>> = []
      let next = 0
      for (let i = 0; i < batch.length; i++) {
        const limited = counted[i]!
        if (typeof limited !== "number") {
          answers.push(Either.left(limited))
          continue
        }
        const answer = appended[next++]!
        answers.push(
          answer._tag === "Rejected"
            ? Either.left(yield* notActive(batch[i]!.conversationId))
            : Either.right({ message: answer.message, created: answer._tag === "Created" })
        )
      }
      return answers
    })

    /**
     * With tracing on, one step of a batch: a span under each sampled sender's span, all ending together (the
     * step's own spans, its SQL statement's, go under the first). Untraced, `effect` itself.
     */
    const inBatch = <A, E>(name: string, batch: ReadonlyArray<Sending>, effect: Effect.Effect<A, E>): Effect.Effect<A, E> => {
      if (!tracing) return effect
      const parents: Array<Tracer.AnySpan> = []
      for (const sending of batch) if (sending.span?.sampled === true) parents.push(sending.span)
      if (parents.length === 0) return effect
      return Effect.flatMap(
        Effect.forEach(parents, (parent) =>
          Effect.makeSpan(name, { parent, captureStackTrace: false, attributes: { "chat.batch.size": batch.length } })),
        (spans) =>
          Effect.onExit(Effect.withParentSpan(effect, spans[0]!), (exit) =>
            Effect.clockWith((clock) =>
              Effect.sync(() => {
                const now = clock.unsafeCurrentTimeNanos()
                for (const span of spans) span.end(now, exit)
              })
            ))
      )
    }

    /** A message announced as its sender's (with tracing on, its publish is part of the sender's trace). */
    const publishAs = (sending: Sending, event: ChatEvent) =>
      sending.span === undefined ? bus.publish(event) : Effect.withParentSpan(bus.publish(event), sending.span)

    /** With tracing on, a step of a send in a span of its own. */
    const step = <A, E>(name: string, effect: Effect.Effect<A, E>): Effect.Effect<A, E> =>
      tracing ? Effect.withSpan(effect, name, { captureStackTrace: false }) : effect

    /** Why a send was left out: the conversation is gone or no longer active. */
    const notActive = (id: ConversationId) =>
      Effect.map(conversations.findById(id), (conversation): SendError =>
        Option.isNone(conversation)
          ? new ConversationNotFound({ id })
          : new ConversationNotActive({ id, status: conversation.value.status }))

    /** A send with an attachment: alone, in its own transaction (see `withAttachment`). */
    const sendAlone = Effect.fnUntraced(function*(actor: User, command: SendMessage) {
      const members = yield* step("Messages.access", participantOnly(actor, command.conversationId))
      yield* step("Messages.rateLimit", limiter.hit(perSender, actor.id))
      const appended = yield* step(
        "Messages.append",
        withAttachment(actor, command, command.attachmentId!, counterpartOf(members, actor.id))
      )
      if (appended._tag === "Rejected") return yield* Effect.flip(notActive(command.conversationId))
      yield* versions.bump(command.conversationId)
      yield* bus.publish({ _tag: "MessageCreated", message: appended.message })
      return { message: appended.message, created: appended._tag === "Created" } satisfies Sent
    })

    const sendingOf = (actor: User, command: SendMessage, members: Participants): Sending => ({
      actor,
      conversationId: command.conversationId,
      receiverId: counterpartOf(members, actor.id),
      content: command.content ?? "",
      type: command.type,
      clientMessageId: command.clientMessageId ?? null
    })

    const fromBatch = (answer: Either.Either<Sent, SendError>): Exit.Exit<Sent, SendError> =>
      Either.isRight(answer) ? Exit.succeed(answer.right) : Exit.fail(answer.left)

    const sendSteps = (actor: User, command: SendMessage): Effect.Effect<Sent, SendError> =>
      command.attachmentId !== undefined
        ? sendAlone(actor, command)
        : Effect.flatMap(step("Messages.access", participantOnly(actor, command.conversationId)), (members) =>
          Effect.flatMap(commit(sendingOf(actor, command, members)), fromBatch))

    /** The wait for the batch: with tracing on, a span that the batch's steps and the publish go under. */
    const commit = (sending: Sending) =>
      tracing
        ? Effect.useSpan("Messages.commit", { captureStackTrace: false }, (span) => sends.enqueue({ ...sending, span }))
        : sends.enqueue(sending)

    /**
     * Sends a message: once committed, published, and answered (a retry of a stored one gets it back). With
     * tracing on, in a span "Messages.send" naming the door it came through.
     */
    const send = (actor: User, command: SendMessage, door: Door = "rest"): Effect.Effect<Sent, SendError> =>
      tracing
        ? Effect.withSpan(sendSteps(actor, command), "Messages.send", {
          captureStackTrace: false,
          attributes: { "chat.door": door, "chat.conversation_id": command.conversationId }
        })
        : sendSteps(actor, command)

    /**
     * `send` for doors that hold many connections, without a fiber per message: `done` is called once with
     * the outcome (from the batch's worker; it must be quick). A conversation not seen yet here, or an
     * attachment, takes the fiber path; so does every send with tracing on (spans live in fibers).
     */
    const submit = (
      actor: User,
      command: SendMessage,
      done: (exit: Exit.Exit<Sent, SendError>) => void,
      door: Door = "websocket"
    ): void => {
      if (tracing) return void runFork(send(actor, command, door)).addObserver(done)
      const members = command.attachmentId === undefined ? known.get(command.conversationId) : undefined
      if (members === undefined) return void runFork(send(actor, command)).addObserver(done)
      if (accessOf(actor, members) !== "participant") {
        // The same answers `participantOnly` gives.
        return done(
          Exit.fail(
            accessOf(actor, members) === "none"
              ? new ConversationNotFound({ id: command.conversationId })
              : new Forbidden({ message: "Only the conversation's participants can do this" })
          )
        )
      }
      sends.submit(sendingOf(actor, command, members), (exit) => done(Exit.flatMap(exit, fromBatch)))
    }

    /** The actor may read the conversation: participants, and admins (audited). Doors check it before a page in wire form. */
    const readable = Effect.fnUntraced(function*(actor: User, id: ConversationId, query: HistoryQuery) {
      const { level } = yield* access(actor, id)
      if (level === "admin") {
        yield* audit.record({
          actorId: actor.id,
          action: "conversation.messages.view",
          targetId: id,
          details: {
            limit: query.limit,
            ...(query.beforeSeq === undefined ? {} : { beforeSeq: query.beforeSeq }),
            ...(query.afterSeq === undefined ? {} : { afterSeq: query.afterSeq })
          }
        })
      }
    })

    const history = (actor: User, id: ConversationId, query: HistoryQuery) =>
      Effect.zipRight(readable(actor, id, query), repo.history(id, query))

    /** The receiver marks one message read; marking it again changes nothing. */
    const markRead = Effect.fnUntraced(function*(actor: User, id: MessageId) {
      const found = yield* repo.findById(id)
      if (Option.isNone(found)) return yield* new MessageNotFound({ id })
      const message = found.value
      const { level } = yield* access(actor, message.conversationId).pipe(
        Effect.catchTag("ConversationNotFound", () => Effect.fail(new MessageNotFound({ id })))
      )
      if (level !== "participant" || message.receiverId !== actor.id) {
        return yield* new Forbidden({ message: "Only the receiver can mark a message read" })
      }
      const changed = yield* repo.markRead(id, actor.id)
      if (Option.isSome(changed)) yield* versions.bump(message.conversationId)
      if (Option.isSome(changed) && message.senderId !== null) {
        yield* bus.publish({
          _tag: "MessagesRead",
          conversationId: message.conversationId,
          readerId: actor.id,
          senderId: message.senderId,
          messageId: id,
          upToSeq: null,
          readAt: changed.value.readAt ?? (yield* DateTime.now)
        })
      }
      return Option.getOrElse(changed, () => message)
    })

    /** Marks what the actor received up to `upToSeq` (default: everything) read. */
    const markConversationRead = Effect.fnUntraced(
      function*(actor: User, id: ConversationId, upToSeq: Seq | undefined) {
        const members = yield* participantOnly(actor, id)
        const result = yield* conversations.markReadUpTo(id, actor.id, upToSeq)
        if (result.changed > 0) {
          yield* versions.bump(id)
          yield* bus.publish({
            _tag: "MessagesRead",
            conversationId: id,
            readerId: actor.id,
            senderId: counterpartOf(members, actor.id),
            messageId: null,
            upToSeq: result.readSeq,
            readAt: yield* DateTime.now
          })
        }
        return result
      }
    )

    const unreadCount = Effect.fnUntraced(function*(actor: User) {
      const byConversation = yield* conversations.unreadFor(actor.id)
      return { total: byConversation.reduce((sum, c) => sum + c.count, 0), byConversation }
    })

    /** Where each conversation's log ends, for sockets told to catch up (they joined already: no actor). */
    const lastSeqs = (ids: ReadonlyArray<ConversationId>) =>
      ids.length === 0 ? Effect.succeed([]) : conversations.lastSeqs(ids)

    return { access, send, submit, readable, history, markRead, markConversationRead, unreadCount, lastSeqs } as const
  })
}) {}
