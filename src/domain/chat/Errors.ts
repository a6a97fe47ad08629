import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import { Schema } from "effect"
import type { ClientAnswer } from "../ClientErrors.js"
import { message } from "../Errors.js"
import { ConversationId, ConversationStatus, MessageId } from "./Model.js"

export class ConversationNotFound extends Schema.TaggedError<ConversationNotFound>()(
  "ConversationNotFound",
  { id: ConversationId, message: message("Conversation not found") },
  HttpApiSchema.annotations({ status: 404 })
) {
  get answer(): ClientAnswer {
    return { code: "ConversationNotFound", message: this.message }
  }
}

export class MessageNotFound extends Schema.TaggedError<MessageNotFound>()(
  "MessageNotFound",
  { id: MessageId, message: message("Message not found") },
  HttpApiSchema.annotations({ status: 404 })
) {
  get answer(): ClientAnswer {
    return { code: "MessageNotFound", message: this.message }
  }
}

/** Closed or archived conversations are read-only; `status` says which. */
export class ConversationNotActive extends Schema.TaggedError<ConversationNotActive>()(
  "ConversationNotActive",
  {
    id: ConversationId,
    status: ConversationStatus,
    message: message("The conversation does not accept new messages")
  },
  HttpApiSchema.annotations({ status: 409 })
) {
  get answer(): ClientAnswer {
    return {
      code: this.status === "archived" ? "ConversationArchived" : "ConversationClosed",
      message: `The conversation is ${this.status}: no new messages`
    }
  }
}

/** The two people are not a user and the trainer assigned to them. */
export class NotAssigned extends Schema.TaggedError<NotAssigned>()(
  "NotAssigned",
  { message: message("You can only chat with your assigned trainer, or with users assigned to you") },
  HttpApiSchema.annotations({ status: 403 })
) {}
