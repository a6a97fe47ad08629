import type { Schema } from "effect"
import type { LiveSession } from "../domain/chat/Live.js"
import type { ConversationId, MessageJson } from "../domain/chat/Model.js"
import type * as Uws from "../server/Uws.js"
import { type ClientEventName, ClientEvents, encodeServerEvent, type ErrorData, type ServerEventName } from "./Protocol.js"
import type { TokenBucket } from "./TokenBucket.js"

/** What the door keeps of each socket (uWS holds it as the socket's user data). */
export interface SocketData {
  /** The device's live side of its conversations (the domain's: joins, typing, leaving). */
  readonly live: LiveSession
  readonly expiresAt: number
  /** The device session of the token the socket was opened with (none for tokens from before sessions). */
  readonly sessionId: string | undefined
  /** This socket's own topic: every frame for it alone goes out through uWS pub/sub too (see `Sessions.send`). */
  readonly topic: string
  /** Conversations whose live messages this socket receives (uWS topic subscribed). */
  readonly joined: Set<ConversationId>
  /**
   * The seq up to which each joined conversation's history was sent: older messages published late (a
   * publisher that lost the race after its commit) must not reach this socket a second time.
   */
  readonly joinedAt: Map<ConversationId, number>
  /** Joins in flight: live messages are held here until the history is sent. */
  readonly pending: Map<ConversationId, { readonly held: Array<MessageJson>; joins: number }>
  readonly sends: TokenBucket
  readonly typings: TokenBucket
  readonly joins: TokenBucket
  readonly reads: TokenBucket
  badFrames: number
  closed: boolean
  expiry: NodeJS.Timeout | undefined
}

/**
 * A connection of either door, as the handlers, the sessions and the fan-out see it: a native uWS socket on
 * `/ws` is one as it is; a Socket.IO connection is one through its adapter (`SocketIo.ts`), which also takes
 * every frame for it through `deliver` (native sockets get theirs through uWS pub/sub, see `Sessions.send`).
 */
export interface Socket {
  getUserData(): SocketData
  /** uWS topics (the socket's own, its conversations'); nothing for a Socket.IO connection. */
  subscribe(topic: string): boolean
  unsubscribe(topic: string): boolean
  /** Bytes written to the socket that its client has not taken yet. */
  getBufferedAmount(): number
  /** Closes the connection, with a close code of `CloseCodes` (or 1001 on shutdown) and a short reason. */
  end(code?: number, reason?: string): void
  /** Only on Socket.IO connections: takes one frame of the native protocol and writes it as Socket.IO does. */
  readonly deliver?: (frame: string) => void
}

/** The native door's sockets as uWS hands them over. */
export type NativeSocket = Uws.WebSocket<SocketData>

export const topicOf = (conversationId: string) => `conv:${conversationId}`

export type ClientData<K extends ClientEventName> = Schema.Schema.Type<(typeof ClientEvents)[K]>
export const isClientEvent = (event: string): event is ClientEventName => Object.hasOwn(ClientEvents, event)

/** A frame whose data is already in wire form (messages, encoded by hand on the hot path). */
export const frameOf = (event: ServerEventName, data: unknown, id?: string) =>
  JSON.stringify(id === undefined ? { event, data } : { event, id, data })

/** The same, around data already written as JSON text (a message's, shared by its ack and its broadcast). */
export const frameAround = (event: ServerEventName, json: string, id?: string) =>
  id === undefined ? `{"event":"${event}","data":${json}}` : `{"event":"${event}","id":${JSON.stringify(id)},"data":${json}}`

export const errorFrame = (data: ErrorData, id: string | undefined) => encodeServerEvent("error", data, id)

/** A client event's handler: the socket, the frame's id (for its ack), and its decoded data. */
export type Handler<K extends ClientEventName> = (ws: Socket, id: string | undefined, data: ClientData<K>) => void
