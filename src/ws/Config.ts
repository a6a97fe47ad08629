import { Config } from "effect"

export const WsConfig = Config.all({
  /**
   * Frames above this close the connection with 1009 (message too big): abuse, not a mistake. uWS itself
   * reads frames up to 4 times this and drops the connection without a close frame beyond.
   */
  maxPayloadBytes: Config.integer("WS_MAX_PAYLOAD_BYTES").pipe(Config.withDefault(64 * 1024)),
  /** Frames above this get a FrameTooLarge error and are ignored. */
  maxFrameBytes: Config.integer("WS_MAX_FRAME_BYTES").pipe(Config.withDefault(16 * 1024)),
  idleTimeoutSeconds: Config.integer("WS_IDLE_TIMEOUT_SECONDS").pipe(Config.withDefault(60)),
  /** A socket that falls this far behind is closed rather than buffered without bound. */
  maxBackpressureBytes: Config.integer("WS_MAX_BACKPRESSURE_BYTES").pipe(Config.withDefault(1024 * 1024)),
  sendPerSecond: Config.number("WS_SEND_PER_SECOND").pipe(Config.withDefault(20)),
  sendBurst: Config.number("WS_SEND_BURST").pipe(Config.withDefault(40)),
  typingPerSecond: Config.number("WS_TYPING_PER_SECOND").pipe(Config.withDefault(5)),
  joinPerSecond: Config.number("WS_JOIN_PER_SECOND").pipe(Config.withDefault(10)),
  joinBurst: Config.number("WS_JOIN_BURST").pipe(Config.withDefault(50)),
  readPerSecond: Config.number("WS_READ_PER_SECOND").pipe(Config.withDefault(10)),
  readBurst: Config.number("WS_READ_BURST").pipe(Config.withDefault(30)),
  /** Conversations one socket is in (joined or joining) at once. */
  maxJoinedPerSocket: Config.integer("WS_MAX_JOINED_PER_SOCKET").pipe(Config.withDefault(100)),
  /** Sockets one user holds on this instance; beyond, the upgrade is refused with 429. */
  maxSocketsPerUser: Config.integer("WS_MAX_SOCKETS_PER_USER").pipe(Config.withDefault(20)),
  /** Frames being worked on at once; beyond, new ones are refused (joins wait briefly for a slot). */
  wsMaxInFlight: Config.integer("WS_MAX_IN_FLIGHT").pipe(Config.withDefault(4096)),
  /** The Socket.IO door (`/socket.io/`) beside `/ws`; off, Socket.IO is not even loaded. */
  socketIo: Config.boolean("SOCKETIO_ENABLED").pipe(Config.withDefault(true))
})
export type WsConfig = Config.Config.Success<typeof WsConfig>
