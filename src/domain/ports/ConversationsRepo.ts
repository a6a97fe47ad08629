import { Context, type Effect, type Option } from "effect"
import type { Conversation, ConversationId, ConversationStatus, Seq } from "../chat/Model.js"
import type { User, UserId } from "../users/Model.js"
import type { Page } from "./UsersRepo.js"

export interface ConversationSummary {
  readonly conversation: Conversation
  readonly counterpart: User
  readonly unreadCount: number
}

export interface ConversationFilter {
  readonly status?: ConversationStatus
  readonly userId?: UserId
  readonly trainerId?: UserId
  readonly limit: number
  readonly offset: number
}

export interface UnreadByConversation {
  readonly conversationId: ConversationId
  readonly count: number
}

export interface LastSeq {
  readonly conversationId: ConversationId
  readonly lastSeq: Seq
}

export interface ReadUpTo {
  /** How many messages turned read. */
  readonly changed: number
  /** The reader's read watermark afterwards. */
  readonly readSeq: Seq
}

export class ConversationsRepo extends Context.Tag("Ports/ConversationsRepo")<ConversationsRepo, {
  readonly findById: (id: ConversationId) => Effect.Effect<Option.Option<Conversation>>
  /** The pair's conversation, created if missing; `created` tells which. */
  readonly findOrCreate: (
    userId: UserId,
    trainerId: UserId
  ) => Effect.Effect<{ readonly conversation: Conversation; readonly created: boolean }>
  /** The participant's conversations, most recent first, with the other side and the participant's unread count. */
  readonly listFor: (participantId: UserId, page: { readonly limit: number; readonly offset: number }) => Effect.Effect<
    Page<ConversationSummary>
  >
  readonly list: (filter: ConversationFilter) => Effect.Effect<Page<Conversation>>
  readonly setStatus: (
    id: ConversationId,
    status: ConversationStatus,
    reason: string | null
  ) => Effect.Effect<Option.Option<Conversation>>
  /** Archives the user's active conversations with every trainer but `keepTrainerId`; returns them. */
  readonly archiveOthers: (userId: UserId, keepTrainerId: UserId) => Effect.Effect<ReadonlyArray<Conversation>>
  /** Reopens the pair's conversation if it was archived by a reassignment. */
  readonly reactivate: (userId: UserId, trainerId: UserId) => Effect.Effect<Option.Option<Conversation>>
  /** Everyone the participant has an active conversation with. */
  readonly counterpartsOf: (participantId: UserId) => Effect.Effect<ReadonlyArray<UserId>>
  readonly unreadFor: (participantId: UserId) => Effect.Effect<ReadonlyArray<UnreadByConversation>>
  /** The last seq of each conversation asked about (unknown ids are left out). */
  readonly lastSeqs: (ids: ReadonlyArray<ConversationId>) => Effect.Effect<ReadonlyArray<LastSeq>>
  /** Marks what `readerId` received in the conversation up to `upToSeq` (all when absent) read. */
  readonly markReadUpTo: (id: ConversationId, readerId: UserId, upToSeq: Seq | undefined) => Effect.Effect<ReadUpTo>
}>() {}
