import { Context, type Effect, type Option } from "effect"
import type { ConversationId, Message, MessageId, MessageType, Seq } from "../chat/Model.js"
import type { UserId } from "../users/Model.js"

export interface NewMessage {
  readonly conversationId: ConversationId
  readonly senderId: UserId | null
  readonly receiverId: UserId | null
  readonly content: string
  readonly type: MessageType
  readonly clientMessageId: string | null
  readonly fileUrl: string | null
  readonly fileName: string | null
}

export type Appended =
  | { readonly _tag: "Created"; readonly message: Message }
  /** The sender already sent this `clientMessageId` here: the original. */
  | { readonly _tag: "Duplicate"; readonly message: Message }
  /** The conversation is not active (or gone): nothing was written. */
  | { readonly _tag: "Rejected" }

export interface HistoryQuery {
  readonly beforeSeq?: Seq
  readonly afterSeq?: Seq
  readonly limit: number
}

export interface History {
  /** Ascending by seq. */
  readonly messages: ReadonlyArray<Message>
  readonly hasMore: boolean
}

export class MessagesRepo extends Context.Tag("Ports/MessagesRepo")<MessagesRepo, {
  /**
   * Appends in one atomic step: the next seq of an active conversation, the
   * row, the conversation's preview and the receiver's unread count. It runs
   * on a connection of its own, never inside the caller's transaction.
   */
  readonly append: (message: NewMessage) => Effect.Effect<Appended>
  /**
   * Many appends in one statement, each as `append` would do it, in order (one conversation's messages
   * get their seqs in the batch's order): one answer per message. Callers that gather concurrent sends
   * (group commit) use it; it runs on a connection of its own.
   */
  readonly appendMany: (batch: ReadonlyArray<NewMessage>) => Effect.Effect<ReadonlyArray<Appended>>
  /** The same, alone, on the current connection: for use inside a transaction. */
  readonly appendInTransaction: (message: NewMessage) => Effect.Effect<Appended>
  readonly findById: (id: MessageId) => Effect.Effect<Option.Option<Message>>
  readonly history: (conversationId: ConversationId, query: HistoryQuery) => Effect.Effect<History>
  /** Marks one message read by its receiver; None when it was already read (or is not theirs). */
  readonly markRead: (id: MessageId, receiverId: UserId) => Effect.Effect<Option.Option<Message>>
}>() {}
