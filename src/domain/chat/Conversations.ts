import { SqlClient } from "@effect/sql"
import { Effect, Option } from "effect"
import { Forbidden } from "../Errors.js"
import { wellFormed } from "../Fields.js"
import { AuditLog } from "../ports/AuditLog.js"
import { Bus } from "../ports/Bus.js"
import { type ConversationFilter, ConversationsRepo } from "../ports/ConversationsRepo.js"
import { MessagesRepo } from "../ports/MessagesRepo.js"
import { PageVersions } from "../ports/PageVersions.js"
import { PresenceStore } from "../ports/PresenceStore.js"
import { UsersRepo } from "../ports/UsersRepo.js"
import type { User, UserId } from "../users/Model.js"
import { ConversationNotFound, NotAssigned } from "./Errors.js"
import type { Conversation, ConversationId } from "./Model.js"
import { accessOf, assignedPair } from "./Policy.js"

export type OpenConversation =
  | { readonly participantId: UserId }
  | { readonly userId: UserId; readonly trainerId: UserId }

export class Conversations extends Effect.Service<Conversations>()("Chat/Conversations", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const repo = yield* ConversationsRepo
    const messages = yield* MessagesRepo
    const users = yield* UsersRepo
    const audit = yield* AuditLog
    const bus = yield* Bus
    const presence = yield* PresenceStore
    const versions = yield* PageVersions

    const findUser = (id: UserId) => Effect.map(users.findById(id), Option.getOrUndefined)

    /** Both sides of a conversation; they exist as long as it does (foreign keys). */
    const peopleOf = (conversation: Conversation) =>
      Effect.all({
        user: Effect.flatten(users.findById(conversation.userId)),
        trainer: Effect.flatten(users.findById(conversation.trainerId))
      }, { concurrency: 2 }).pipe(Effect.orDie)

    /** The conversation as the actor may see it: admins' reads are audited; strangers get not-found. */
    const visible = Effect.fn("Conversations.visible")(function*(actor: User, id: ConversationId) {
      const conversation = yield* repo.findById(id)
      const access = Option.isSome(conversation) ? accessOf(actor, conversation.value) : "none"
      if (Option.isNone(conversation) || access === "none") return yield* new ConversationNotFound({ id })
      return { conversation: conversation.value, access }
    })

    const open = Effect.fn("Conversations.open")(function*(actor: User, input: OpenConversation) {
      let pair: { readonly user: User; readonly trainer: User } | undefined
      if ("participantId" in input) {
        const counterpart = yield* findUser(input.participantId)
        pair = counterpart === undefined
          ? undefined
          : actor.role === "user"
          ? assignedPair(actor, counterpart)
          : actor.role === "trainer"
          ? assignedPair(counterpart, actor)
          : undefined
      } else {
        if (actor.role !== "admin") return yield* new Forbidden({ message: "Only admins can open a conversation for others" })
        const [user, trainer] = yield* Effect.all([findUser(input.userId), findUser(input.trainerId)])
        pair = user && trainer ? assignedPair(user, trainer) : undefined
      }
      if (pair === undefined || !pair.user.isActive || !pair.trainer.isActive) return yield* new NotAssigned()
      const { conversation, created } = yield* repo.findOrCreate(pair.user.id, pair.trainer.id)
      return { conversation, created, user: pair.user, trainer: pair.trainer }
    })

    /** The actor's conversations, each with the counterpart's presence. */
    const list = Effect.fn("Conversations.list")(function*(
      actor: User,
      page: { readonly limit: number; readonly offset: number }
    ) {
      const found = yield* repo.listFor(actor.id, page)
      const online = yield* presence.lookup(found.items.map((item) => item.counterpart.id))
      return {
        total: found.total,
        items: found.items.map((item) => ({ ...item, presence: online.get(item.counterpart.id) ?? null }))
      }
    })

    const get = Effect.fn("Conversations.get")(function*(actor: User, id: ConversationId) {
      const { access, conversation } = yield* visible(actor, id)
      if (access === "admin") {
        yield* audit.record({ actorId: actor.id, action: "conversation.view", targetId: id, details: null })
      }
      return { conversation, ...(yield* peopleOf(conversation)) }
    })

    const requireAdmin = (actor: User) =>
      actor.role === "admin" ? Effect.void : Effect.fail(new Forbidden({ message: "Admins only" }))

    const listAll = Effect.fn("Conversations.listAll")(function*(actor: User, filter: ConversationFilter) {
      yield* requireAdmin(actor)
      const page = yield* repo.list(filter)
      yield* audit.record({
        actorId: actor.id,
        action: "conversations.list",
        targetId: null,
        details: {
          ...(filter.status ? { status: filter.status } : {}),
          ...(filter.userId ? { userId: filter.userId } : {}),
          ...(filter.trainerId ? { trainerId: filter.trainerId } : {}),
          limit: filter.limit,
          offset: filter.offset
        }
      })
      return page
    })

    /** Closes the conversation for good, leaving a system message saying so. Closing twice changes nothing. */
    const close = Effect.fn("Conversations.close")(function*(actor: User, id: ConversationId, given: string | null) {
      yield* requireAdmin(actor)
      // Stored in text, jsonb (the audit) and frames alike: one well-formed value for all three.
      const reason = given === null ? null : wellFormed(given)
      const outcome = yield* sql.withTransaction(Effect.gen(function*() {
        const found = yield* repo.findById(id)
        if (Option.isNone(found)) return yield* new ConversationNotFound({ id })
        const alreadyClosed = found.value.status === "closed"
        const appended = alreadyClosed ? undefined : yield* messages.appendInTransaction({
            conversationId: id,
            senderId: actor.id,
            receiverId: null,
            content: reason ? `Conversation closed by an admin: ${reason}` : "Conversation closed by an admin",
            type: "system",
            clientMessageId: null,
            fileUrl: null,
            fileName: null
          })
        const closed = alreadyClosed ? Option.none() : yield* repo.setStatus(id, "closed", reason)
        yield* audit.record({
          actorId: actor.id,
          action: "conversation.close",
          targetId: id,
          details: { ...(reason ? { reason } : {}), ...(alreadyClosed ? { alreadyClosed } : {}) }
        })
        return {
          conversation: Option.getOrElse(closed, () => found.value),
          notice: appended?._tag === "Created" ? appended.message : undefined
        }
      })).pipe(Effect.catchTag("SqlError", Effect.die))
      const { conversation, notice } = outcome
      if (notice !== undefined) {
        yield* versions.bump(conversation.id)
        yield* bus.publish({ _tag: "MessageCreated", message: notice })
        yield* bus.publish({
          _tag: "ConversationClosed",
          conversationId: conversation.id,
          userId: conversation.userId,
          trainerId: conversation.trainerId,
          reason
        })
      }
      return conversation
    })

    const auditTrail = Effect.fn("Conversations.auditTrail")(function*(
      actor: User,
      page: { readonly limit: number; readonly offset: number }
    ) {
      yield* requireAdmin(actor)
      return yield* audit.list(page)
    })

    return { visible, open, list, get, listAll, close, auditTrail } as const
  })
}) {}
