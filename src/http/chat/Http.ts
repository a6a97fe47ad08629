import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { Metrics } from "../../domain/ports/Metrics.js"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect } from "effect"
import { Conversations } from "../../domain/chat/Conversations.js"
import { Messages } from "../../domain/chat/Messages.js"
import type { Conversation, Seq } from "../../domain/chat/Model.js"
import type { PresenceState } from "../../domain/ports/PresenceStore.js"
import type { User } from "../../domain/users/Model.js"
import { Api } from "../Api.js"
import { CurrentUser } from "../Security.js"
import { withRetryAfter } from "../RetryAfter.js"
import { withStatus } from "../Schemas.js"
import { ConversationCreated, ConversationView } from "./Api.js"
import { HistoryJson } from "../../infra/sql/HistoryJson.js"
import { encodeMessage, historyPageJson } from "../../infra/wire/MessageJson.js"

const profile = (user: User) => ({
  id: user.id,
  firstName: user.firstName,
  lastName: user.lastName,
  avatar: user.avatar,
  role: user.role
})

/** The conversation as `actor` sees it: their counterpart, their unread count, their read watermark. */
const present = (
  actor: User,
  people: { readonly conversation: Conversation; readonly user: User; readonly trainer: User },
  View: typeof ConversationView | typeof ConversationCreated = ConversationView,
  presence: PresenceState | null = null
) => {
  const { conversation: c, trainer, user } = people
  const side = actor.id === c.userId ? "user" : actor.id === c.trainerId ? "trainer" : undefined
  return new View({
    id: c.id,
    userId: c.userId,
    trainerId: c.trainerId,
    status: c.status,
    lastSeq: c.lastSeq,
    lastMessageAt: c.lastMessageAt,
    lastMessagePreview: c.lastMessagePreview,
    closedReason: c.closedReason,
    createdAt: c.createdAt,
    updatedAt: c.updatedAt,
    user: profile(user),
    trainer: profile(trainer),
    counterpart: side === "user" ? profile(trainer) : side === "trainer" ? profile(user) : null,
    unreadCount: side === "user" ? c.userUnread : side === "trainer" ? c.trainerUnread : 0,
    readSeq: side === "user" ? c.userReadSeq : side === "trainer" ? c.trainerReadSeq : 0 as Seq,
    presence
  }, true)
}

// Created answers 201 by the contract's first success schema; found, 200.
const found = withStatus(ConversationView, 200)

// Messages are the hot path: encoded by hand (`encodeMessage`, kept equal to the contract's schema by a
// test) instead of by the generic encoder, which would cost more than the rest of the request.

export const ChatLive = HttpApiBuilder.group(Api, "chat", (handlers) =>
  Effect.gen(function*() {
    const conversations = yield* Conversations
    const messages = yield* Messages
    const metrics = yield* Metrics
    const pages = yield* HistoryJson

    return handlers
      .handle("openConversation", ({ payload }) =>
        Effect.gen(function*() {
          const actor = yield* CurrentUser
          const opened = yield* conversations.open(actor, payload)
          return opened.created ? present(actor, opened, ConversationCreated) : yield* found(present(actor, opened))
        }))
      .handle("listConversations", ({ urlParams }) =>
        Effect.gen(function*() {
          const actor = yield* CurrentUser
          const page = yield* conversations.list(actor, urlParams)
          return {
            items: page.items.map(({ conversation, counterpart, presence }) =>
              present(actor, {
                conversation,
                user: conversation.userId === actor.id ? actor : counterpart,
                trainer: conversation.trainerId === actor.id ? actor : counterpart
              }, ConversationView, presence)
            ),
            total: page.total,
            limit: urlParams.limit,
            offset: urlParams.offset
          }
        }))
      .handle("getConversation", ({ path }) =>
        Effect.flatMap(CurrentUser, (actor) => Effect.map(conversations.get(actor, path.id), (c) => present(actor, c))))
      .handle("history", ({ path, urlParams }) =>
        Effect.flatMap(CurrentUser, (actor) =>
          Effect.map(Effect.zipRight(messages.readable(actor, path.id, urlParams), pages.page(path.id, urlParams)), (page) =>
            HttpServerResponse.text(historyPageJson(page), { contentType: "application/json" }))))
      .handle("markConversationRead", ({ path, payload }) =>
        Effect.flatMap(CurrentUser, (actor) => messages.markConversationRead(actor, path.id, payload.upToSeq)))
      .handle("sendMessage", ({ payload }) =>
        Effect.gen(function*() {
          const arrived = performance.now()
          const actor = yield* CurrentUser
          const { created, message } = yield* withRetryAfter(messages.send(actor, payload))
          metrics.messageSent("rest", (performance.now() - arrived) / 1000, created)
          return HttpServerResponse.unsafeJson(encodeMessage(message), { status: created ? 201 : 200 })
        }))
      .handle("markMessageRead", ({ path }) => Effect.flatMap(CurrentUser, (actor) => messages.markRead(actor, path.id)))
      .handle("unreadCount", () => Effect.flatMap(CurrentUser, messages.unreadCount))
  }))

export const ModerationLive = HttpApiBuilder.group(Api, "moderation", (handlers) =>
  Effect.gen(function*() {
    const conversations = yield* Conversations

    return handlers
      .handle("listConversations", ({ urlParams }) =>
        Effect.flatMap(CurrentUser, (actor) =>
          Effect.map(conversations.listAll(actor, urlParams), (page) => ({
            ...page,
            limit: urlParams.limit,
            offset: urlParams.offset
          }))))
      .handle("closeConversation", ({ path, payload }) =>
        Effect.flatMap(CurrentUser, (actor) => conversations.close(actor, path.id, payload.reason ?? null)))
      .handle("audit", ({ urlParams }) =>
        Effect.flatMap(CurrentUser, (actor) =>
          Effect.map(conversations.auditTrail(actor, urlParams), (page) => ({
            ...page,
            limit: urlParams.limit,
            offset: urlParams.offset
          }))))
  }))
