import type { ConversationId } from "../domain/chat/Model.js"
import type { MetricsShape, Transport } from "../domain/ports/Metrics.js"
import type { UserId } from "../domain/users/Model.js"
import type * as Uws from "../server/Uws.js"
import { CloseCodes, type ErrorCode, type ErrorData } from "./Protocol.js"
import { errorFrame, frameOf, type Socket, topicOf } from "./Socket.js"

/**
 * The sockets of this instance: by user, by conversation (rooms, and joins in flight), and the way every frame
 * leaves. Every frame goes out through uWS pub/sub: a conversation's topic for its live messages, the socket's
 * own topic for the rest (acks, errors, history, notifications). uWS keeps each socket's frames in publish
 * order until the end of the event loop's turn and writes them corked: an ack and the echo of the same
 * message, or the acks of one group-committed batch, leave in one write per socket, not one each.
 */
export class Sessions {
  readonly sockets = new Set<Socket>()
  private readonly byUser = new Map<UserId, Set<Socket>>()
  /** Who is in each conversation's room on this instance, to look at their backlog before a broadcast. */
  readonly rooms = new Map<ConversationId, Set<Socket>>()
  /** Sockets with a join of the conversation in flight (they hold its live messages until their history). */
  readonly pendingByConversation = new Map<ConversationId, Set<Socket>>()
  /** The Socket.IO connections of each room (uWS pub/sub reaches only the native ones). */
  private readonly socketIoRooms = new Map<ConversationId, Set<Socket>>()
  private static readonly none: ReadonlySet<Socket> = new Set()

  constructor(
    private readonly app: Uws.TemplatedApp,
    private readonly maxBackpressureBytes: number,
    readonly metrics: MetricsShape
  ) {}

  /** A socket opened; true when it is its user's first on this instance. */
  add(ws: Socket): boolean {
    this.sockets.add(ws)
    const userId = ws.getUserData().live.user.id
    const mine = this.byUser.get(userId) ?? new Set()
    mine.add(ws)
    this.byUser.set(userId, mine)
    return mine.size === 1
  }

  /** A socket closed: it leaves its rooms; true when it was its user's last on this instance. */
  remove(ws: Socket): boolean {
    const data = ws.getUserData()
    this.sockets.delete(ws)
    for (const conversationId of data.pending.keys()) this.pendingByConversation.get(conversationId)?.delete(ws)
    for (const conversationId of data.joined) this.unsubscribe(ws, conversationId)
    const mine = this.byUser.get(data.live.user.id)
    mine?.delete(ws)
    if (mine?.size !== 0) return false
    this.byUser.delete(data.live.user.id)
    return true
  }

  socketsOf(userId: UserId): ReadonlySet<Socket> {
    return this.byUser.get(userId) ?? Sessions.none
  }

  /** Sockets of the user on this instance. */
  countOf(userId: UserId): number {
    return this.byUser.get(userId)?.size ?? 0
  }

  /** The socket receives the conversation's live messages from now on; it got its history up to `historyTo`. */
  subscribe(ws: Socket, conversationId: ConversationId, historyTo: number): void {
    const data = ws.getUserData()
    ws.subscribe(topicOf(conversationId))
    data.joined.add(conversationId)
    data.joinedAt.set(conversationId, historyTo)
    const room = this.rooms.get(conversationId) ?? new Set()
    room.add(ws)
    this.rooms.set(conversationId, room)
    if (ws.deliver !== undefined) {
      const others = this.socketIoRooms.get(conversationId) ?? new Set()
      others.add(ws)
      this.socketIoRooms.set(conversationId, others)
    }
  }

  unsubscribe(ws: Socket, conversationId: ConversationId): void {
    const data = ws.getUserData()
    if (!data.closed) ws.unsubscribe(topicOf(conversationId))
    data.joinedAt.delete(conversationId)
    const room = this.rooms.get(conversationId)
    room?.delete(ws)
    if (room?.size === 0) this.rooms.delete(conversationId)
    const others = this.socketIoRooms.get(conversationId)
    others?.delete(ws)
    if (others?.size === 0) this.socketIoRooms.delete(conversationId)
  }

  /** A socket that does not read is cut off (4009), never buffered without bound. */
  tooSlow(ws: Socket): boolean {
    if (ws.getUserData().closed || ws.getBufferedAmount() <= this.maxBackpressureBytes) return false
    this.metrics.slowConsumer(transportOf(ws))
    ws.end(CloseCodes.tooSlow, "too slow")
    return true
  }

  /** Queues a frame for this socket. */
  send(ws: Socket, frame: string): void {
    if (ws.getUserData().closed || this.tooSlow(ws)) return
    if (ws.deliver !== undefined) return ws.deliver(frame)
    this.app.publish(ws.getUserData().topic, frame)
  }

  /** Queues a frame for everyone in the conversation's room (in one publish, and to its Socket.IO connections). */
  broadcast(conversationId: ConversationId, frame: string): void {
    this.app.publish(topicOf(conversationId), frame)
    const others = this.socketIoRooms.get(conversationId)
    if (others !== undefined) for (const ws of others) if (!ws.getUserData().closed) ws.deliver!(frame)
  }

  sendError(ws: Socket, id: string | undefined, code: ErrorCode, message: string, retryAfterMs?: number): void {
    this.sendErrorData(ws, { code, message, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) }, id)
  }

  /** A socket's own rate limit refused a frame: `RateLimited` with the wait, counted by bucket. */
  limited(ws: Socket, id: string | undefined, bucket: string, message: string, retryAfterMs: number): void {
    this.metrics.rateLimited(bucket)
    this.sendError(ws, id, "RateLimited", message, retryAfterMs)
  }

  /** Every `error` frame leaves here (and is counted by its code). */
  sendErrorData(ws: Socket, data: ErrorData, id: string | undefined): void {
    this.metrics.errorFrame(data.code)
    this.send(ws, errorFrame(data, id))
  }

  /** Acks carry plain JSON data (messages already in wire form); a frame without id gets none. */
  ack(ws: Socket, id: string | undefined, data: unknown): void {
    if (id !== undefined) this.send(ws, frameOf("ack", data, id))
  }
}

/** Which door a socket came through. */
export const transportOf = (ws: Socket): Transport => ws.deliver === undefined ? "websocket" : "socketio"
