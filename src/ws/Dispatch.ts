import { Schema } from "effect"
import type { WsConfig } from "./Config.js"
import {
  ClientEnvelope,
  type ClientEventName,
  ClientEvents,
  CloseCodes,
  envelopeFast,
  type ErrorCode,
  issuesOf,
  MaxDepth,
  nestsDeeperThan,
  sendMessageFast
} from "./Protocol.js"
import { type Sessions, transportOf } from "./Sessions.js"
import { type Handler, isClientEvent, type Socket } from "./Socket.js"

const tooDeep = `Frames nest at most ${MaxDepth} levels of objects and arrays`
const unknownEvent = `Unknown event: the events are ${Object.keys(ClientEvents).join(", ")}`
const decodeEnvelope = Schema.decodeUnknownEither(ClientEnvelope)

type Route = (ws: Socket, id: string | undefined, event: string, data: unknown) => void

/** Each client event's handler (`events/<name>.ts`, listed in `Door.ts`). */
export type Handlers = { readonly [K in ClientEventName]: Handler<K> }

/**
 * Frames → client events: the envelope and each event's data are decoded (by hand on the hot path, by their
 * schemas otherwise), then handed to the event's handler. A frame that is not one gets an `error` with its
 * code; twenty bad frames in a row close the socket.
 */
export const makeDispatch = (config: WsConfig, sessions: Sessions, handlers: Handlers) => {
  const metrics = sessions.metrics
  const badFrame = (ws: Socket, id: string | undefined, code: ErrorCode, message: string) => {
    const data = ws.getUserData()
    metrics.frameReceived(transportOf(ws), "invalid")
    sessions.sendError(ws, id, code, message)
    if (++data.badFrames >= 20) ws.end(CloseCodes.abuse, "too many bad frames")
  }

  /** Decodes an event's data with its schema (or `fast`, when it can), then hands it to its handler. */
  const on = <K extends ClientEventName>(
    name: K,
    handler: Handler<K>,
    fast?: (data: unknown) => Parameters<Handler<K>>[2] | undefined
  ): Route => {
    const decode = Schema.decodeUnknownEither(ClientEvents[name] as unknown as Schema.Schema<Parameters<Handler<K>>[2], unknown>)
    return (ws, id, event, data) => {
      const quick = fast?.(data)
      if (quick !== undefined) {
        ws.getUserData().badFrames = 0
        return handler(ws, id, quick)
      }
      // The hand-written checks accept flat data only; anything else is bounded before the schema sees it.
      if (nestsDeeperThan(data, MaxDepth - 1)) return badFrame(ws, id, "BadFrame", tooDeep)
      const decoded = decode(data ?? {})
      if (decoded._tag === "Left") return sessions.sendError(ws, id, "InvalidData", `${event}: ${issuesOf(decoded.left)}`)
      ws.getUserData().badFrames = 0
      handler(ws, id, decoded.right)
    }
  }

  // The hot event's data is checked by hand first (`sendMessageFast`); the others by their schemas.
  const routes: Record<ClientEventName, Route> = {
    joinConversation: on("joinConversation", handlers.joinConversation),
    leaveConversation: on("leaveConversation", handlers.leaveConversation),
    sendMessage: on("sendMessage", handlers.sendMessage, sendMessageFast),
    typing: on("typing", handlers.typing),
    markAsRead: on("markAsRead", handlers.markAsRead)
  }

  const route = (ws: Socket, { data, event, id }: typeof ClientEnvelope.Type) => {
    if (!isClientEvent(event)) return badFrame(ws, id, "UnknownEvent", unknownEvent)
    metrics.frameReceived(transportOf(ws), event)
    routes[event](ws, id, event, data)
  }

  /**
   * An event that came already decoded (a Socket.IO packet's): the same checks as a frame's, after its JSON.
   * `id` is the door's own, for the answer.
   */
  const onEvent = (ws: Socket, event: string, id: string | undefined, data: unknown): void => {
    if (nestsDeeperThan(data, MaxDepth - 1)) return badFrame(ws, id, "BadFrame", tooDeep)
    route(ws, id === undefined ? { event, data } : { event, id, data })
  }

  const onFrame = (ws: Socket, buffer: ArrayBuffer, isBinary: boolean): void => {
    if (buffer.byteLength > config.maxPayloadBytes) {
      metrics.frameReceived(transportOf(ws), "invalid")
      return ws.end(CloseCodes.messageTooBig, "message too big")
    }
    if (isBinary) return badFrame(ws, undefined, "BadFrame", "Frames are JSON text")
    if (buffer.byteLength > config.maxFrameBytes) {
      return badFrame(ws, undefined, "FrameTooLarge", `Frames are at most ${config.maxFrameBytes} bytes`)
    }
    // The buffer is neutered when this callback returns: decode it now.
    let json: unknown
    try {
      json = JSON.parse(Buffer.from(buffer).toString("utf8"))
    } catch {
      return badFrame(ws, undefined, "BadJson", "The frame is not valid JSON")
    }
    const quick = envelopeFast(json)
    if (quick !== undefined) return route(ws, quick)
    const id = typeof json === "object" && json !== null && "id" in json && typeof json.id === "string" &&
        json.id.length >= 1 && json.id.length <= 64
      ? json.id
      : undefined
    if (nestsDeeperThan(json, MaxDepth)) return badFrame(ws, id, "BadFrame", tooDeep)
    const envelope = decodeEnvelope(json)
    if (envelope._tag === "Left") {
      return badFrame(ws, id, "BadFrame", `Expected { event, data, id? }: ${issuesOf(envelope.left)}`)
    }
    route(ws, envelope.right)
  }

  return { onFrame, onEvent }
}
