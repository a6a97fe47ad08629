import { Cause, type Effect, Exit, type Fiber, Option } from "effect"
import { answerOf, type ClientFacing } from "../domain/ClientErrors.js"
import { isUnavailable, retryAfterMs } from "../infra/Unavailable.js"
import { type Failures, internalError, unavailableError, unavailableRetryMs } from "./Failures.js"
import { InFlightCount, Pressure } from "./Overload.js"
import type { Sessions } from "./Sessions.js"
import type { Socket } from "./Socket.js"

interface Waiting {
  readonly ws: Socket
  readonly start: () => void
  readonly refused: () => void
  readonly timer: NodeJS.Timeout
}

const maxWaitMs = 2000

/**
 * The work sockets start: run in the door's fibers (shutdown waits for them), bounded. Overload sheds frames
 * with an error (nothing done, retry later) instead of queueing work without bound; the hint grows with the
 * excess demand and is jittered. Joins (a reconnecting client's resumes) wait a little for a free slot first,
 * in a small bounded queue. A domain failure becomes its `error` frame (the error's own answer),
 * infrastructure away `Unavailable`, a defect `Internal`.
 */
export class Work {
  private readonly inFlight = new InFlightCount()
  private shuttingDown = false
  private readonly pressure: Pressure
  private readonly waiting: Array<Waiting> = []
  private readonly maxWaiting: number

  constructor(
    private readonly sessions: Sessions,
    private readonly failures: Failures,
    private readonly run: <A, E>(effect: Effect.Effect<A, E>) => Fiber.RuntimeFiber<A, E>,
    private readonly maxInFlight: number
  ) {
    this.pressure = new Pressure(maxInFlight)
    this.maxWaiting = Math.max(16, Math.ceil(maxInFlight / 4))
  }

  get isShuttingDown(): boolean {
    return this.shuttingDown
  }

  /** New frames get `ShuttingDown`; what is in flight goes on. */
  stopAccepting(): void {
    this.shuttingDown = true
  }

  /**
   * Runs a handler's effect for a socket and calls `onSuccess` with its value. With `refused` the frame may wait
   * for a slot (joins); `refused` runs when it is not run after all.
   */
  handle<A, E extends ClientFacing>(
    ws: Socket,
    id: string | undefined,
    effect: Effect.Effect<A, E>,
    onSuccess: (value: A) => void,
    refused?: () => void
  ): void {
    // Shutting down: in-flight work finishes and flushes its acks; nothing new starts.
    if (this.shuttingDown) {
      this.sessions.sendError(ws, id, "ShuttingDown", "The server is shutting down: reconnect elsewhere")
      return refused?.()
    }
    const start = () => {
      this.inFlight.add()
      // The outcome is handled in the fiber's observer, synchronously: no more steps on the hot path.
      this.run(effect).addObserver((exit) => this.settle(ws, id, exit, onSuccess))
    }
    if (this.inFlight.size < this.maxInFlight) return start()
    if (refused === undefined || this.waiting.length >= this.maxWaiting) {
      this.overloaded(ws, id)
      return refused?.()
    }
    const entry: Waiting = {
      ws,
      start,
      refused,
      timer: setTimeout(() => {
        const at = this.waiting.indexOf(entry)
        if (at >= 0) this.waiting.splice(at, 1)
        if (!ws.getUserData().closed) this.overloaded(ws, id)
        refused()
      }, maxWaitMs)
    }
    this.waiting.push(entry)
  }

  /**
   * The same for work that answers through a callback instead of a fiber (sends: see `Messages.submit`):
   * `start` begins it and calls `done` once with its outcome. Never waits for a slot.
   */
  submit<A, E extends ClientFacing>(
    ws: Socket,
    id: string | undefined,
    start: (done: (exit: Exit.Exit<A, E>) => void) => void,
    onSuccess: (value: A) => void
  ): void {
    if (this.shuttingDown) return this.sessions.sendError(ws, id, "ShuttingDown", "The server is shutting down: reconnect elsewhere")
    if (this.inFlight.size >= this.maxInFlight) return this.overloaded(ws, id)
    this.inFlight.add()
    let settled = false
    try {
      start((exit) => {
        if (settled) return
        settled = true
        this.settle(ws, id, exit, onSuccess)
      })
    } catch (error) {
      if (!settled) {
        settled = true
        this.settle(ws, id, Exit.die(error), onSuccess)
      }
    }
  }

  /** Done when no work started here is in flight. */
  get idle(): Effect.Effect<void> {
    return this.inFlight.idle
  }

  private settle<A, E>(ws: Socket, id: string | undefined, exit: Exit.Exit<A, E>, onSuccess: (value: A) => void) {
    // The slot goes to the waiting first: `idle` hears of zero only when nothing takes it.
    if (this.waiting.length > 0) this.admitWaiting(1)
    this.inFlight.remove()
    if (Exit.isFailure(exit)) return this.failure(ws, id, exit.cause)
    try {
      onSuccess(exit.value)
    } catch (error) {
      this.failure(ws, id, Cause.die(error))
    }
  }

  private overloaded(ws: Socket, id: string | undefined) {
    this.sessions.sendError(ws, id, "Overloaded", "The server is busy: retry in a moment", this.pressure.refuse())
  }

  /** Starts what waits while slots are free (`freeing`: slots about to be given back). */
  private admitWaiting(freeing: number) {
    while (this.inFlight.size - freeing < this.maxInFlight && this.waiting.length > 0) {
      const next = this.waiting.shift()!
      clearTimeout(next.timer)
      if (next.ws.getUserData().closed) next.refused()
      else next.start()
    }
  }

  private failure(ws: Socket, id: string | undefined, cause: Cause.Cause<unknown>) {
    if (isUnavailable(cause)) {
      this.failures.unavailable("handler", cause)
      return this.sessions.sendErrorData(ws, { ...unavailableError, retryAfterMs: retryAfterMs(unavailableRetryMs, 2) }, id)
    }
    const failure = Cause.failureOption(cause)
    const answer = Option.isSome(failure) ? answerOf(failure.value) : undefined
    if (answer !== undefined) return this.sessions.sendErrorData(ws, answer, id)
    this.failures.failed("handler", cause)
    this.sessions.sendErrorData(ws, internalError, id)
  }
}
