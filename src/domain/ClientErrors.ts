/**
 * What a client of a live door (WebSocket, Socket.IO) is told of a domain failure: a stable code it
 * switches on, a message for people, and when to retry. Each domain error a live door can meet says so
 * itself (its `answer`, next to its definition); REST answers the same errors by their HTTP annotations.
 */
export type ClientErrorCode =
  | "RateLimited"
  | "Forbidden"
  | "ConversationNotFound"
  | "ConversationClosed"
  | "ConversationArchived"
  | "MessageNotFound"
  | "AttachmentNotFound"
  | "AttachmentUnavailable"

export interface ClientAnswer {
  readonly code: ClientErrorCode
  readonly message: string
  readonly retryAfterMs?: number
}

/** A failure a live door can pass on as it is. */
export interface ClientFacing {
  readonly _tag: string
  readonly answer: ClientAnswer
}

/** The answer of a failure that carries none (a bug: the types promise one): `undefined`, the door says Internal. */
export const answerOf = (failure: unknown): ClientAnswer | undefined => {
  if (typeof failure !== "object" || failure === null || !("answer" in failure)) return undefined
  const answer = (failure as ClientFacing).answer
  return typeof answer === "object" && answer !== null ? answer : undefined
}
