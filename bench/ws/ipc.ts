/** Messages between the bench (parent) and its load generator processes (over the `fork` IPC channel). */

export interface Pair {
  readonly conversationId: string
  readonly userId: string
  readonly userToken: string
  readonly trainerId: string
  readonly trainerToken: string
}

export interface RunCommand {
  readonly runNo: number
  /** This process's share of the offered rate, msgs/s. */
  readonly rate: number
  readonly seconds: number
  readonly drainSeconds: number
  /** `clientMessageId`s are `<tag>-<runNo>-<generator>.<i>`: tag is unique per bench invocation. */
  readonly tag: string
  readonly generator: number
  readonly contentBytes: number
}

export type Request =
  | {
    readonly type: "connect"
    /** Where the user sockets connect (and the trainer sockets, unless `trainerWsUrls` says otherwise). */
    readonly wsUrl: string
    readonly pairs: ReadonlyArray<Pair>
    /** Per pair, where its trainer socket connects (several instances: another one than the user's). */
    readonly trainerWsUrls?: ReadonlyArray<string>
    /** `ws`: native sockets on /ws; `socketio`: socket.io-client connections on /socket.io/. */
    readonly transport?: "ws" | "socketio"
    /** No trainer socket: the recipients are offline, and no delivery is waited for. */
    readonly offlineRecipients?: boolean
  }
  | {
    readonly type: "openIdle"
    readonly wsUrl: string
    readonly token: string
    readonly count: number
    readonly transport?: "ws" | "socketio"
  }
  | { readonly type: "closeIdle" }
  | ({ readonly type: "run" } & RunCommand)
  | { readonly type: "exit" }

/** What one load generator saw in one run. Histograms are µs, encoded with `encodeIntoCompressedBase64`. */
export interface RunReport {
  readonly runNo: number
  /** Messages the schedule held (rate × seconds). */
  readonly scheduled: number
  /** Frames actually written (all of them, unless a socket closed). */
  readonly sent: number
  readonly acked: number
  /** `error` replies by code (RateLimited, Internal, …). */
  readonly errors: Record<string, number>
  /** Neither acked nor answered with an error when the drain ended. */
  readonly unanswered: number
  /** Acks whose message did not carry the clientMessageId sent (should be 0). */
  readonly badAcks: number
  /** Acked messages whose newMessage never reached the counterpart's socket. */
  readonly undelivered: number
  /** newMessage frames at the counterpart beyond the first for a clientMessageId, or for a message id already seen. */
  readonly duplicated: number
  /** newMessage frames at the counterpart that were for another conversation or sender (should be 0). */
  readonly misdelivered: number
  /** newMessage echoes at the sender's own socket (it joined too). */
  readonly echoes: number
  /** Bench sockets that closed during the run (should be 0). */
  readonly closedSockets: number
  readonly ackHistogram: string
  readonly deliveryHistogram: string
  /** How late the generator wrote each frame against its schedule (its own health), µs. */
  readonly lagHistogram: string
  /** process.hrtime of the first scheduled send and the end of the schedule, µs. */
  readonly startUs: number
  readonly endUs: number
  /** process.hrtime of the last ack, µs (startUs when none). */
  readonly lastAckUs: number
}

export type Reply =
  | { readonly type: "connected"; readonly sockets: number; readonly ms: number }
  | { readonly type: "idleOpened"; readonly opened: number; readonly failed: number; readonly firstError?: string }
  | { readonly type: "idleClosed" }
  | ({ readonly type: "result" } & RunReport)
  | { readonly type: "failed"; readonly message: string }
