import { Effect } from "effect"
import { TestServer } from "./TestApp.js"
import { assign, createUser, type SignedIn } from "./Users.js"

export interface Pair {
  readonly user: SignedIn
  readonly trainer: SignedIn
  readonly conversationId: string
}

/** A fresh trainer and a user assigned to them, with their conversation opened by the user. */
export const pair = Effect.gen(function*() {
  const server = yield* TestServer
  const [trainer, user] = yield* Effect.all([createUser("trainer"), createUser("user")])
  yield* assign(user.id, trainer.id)
  const opened = yield* server.request("POST", "/chat/conversations", { token: user.token, body: { participantId: trainer.id } })
  if (opened.status !== 201) return yield* Effect.dieMessage(`open: ${opened.status} ${JSON.stringify(opened.body)}`)
  return { user, trainer, conversationId: opened.body.id as string } satisfies Pair
})

export const send = (token: string, conversationId: string, content: string, clientMessageId?: string) =>
  Effect.gen(function*() {
    const server = yield* TestServer
    return yield* server.request("POST", "/chat/messages", {
      token,
      body: { conversationId, content, ...(clientMessageId === undefined ? {} : { clientMessageId }) }
    })
  })

export const history = (token: string, conversationId: string, query = "") =>
  Effect.gen(function*() {
    const server = yield* TestServer
    return yield* server.request("GET", `/chat/conversations/${conversationId}/messages${query}`, { token })
  })
