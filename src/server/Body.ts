import { guardedCallback, Refusal } from "./Guards.js"
import type { HttpResponse } from "./Uws.js"

/** What a body reader needs of its request: whether it is over, how to refuse, and where a throw goes. */
export interface BodyHooks {
  /** The request is answered or the client went away: chunks are dropped. */
  readonly isDone: () => boolean
  readonly gone: () => boolean
  /** Beyond the limit: the request's slot is freed and it is answered 413 (once the rest was drained). */
  readonly onTooLarge: () => void
  /** Called when the client goes away: a body being streamed fails then. */
  readonly onAbort: (hook: () => void) => void
  readonly crash: (error: unknown) => void
}

/**
 * Reads a request body from uWS: whole, up to `limit` bytes (`onBody` gets it once complete, valid during that
 * call only: uWS's last chunk is neutered after it; a caller that keeps the bytes copies them), or streaming
 * (`onStream` gets it at once; uWS stops reading from the socket while the handler has not taken what is
 * buffered). Beyond the limit (announced or received), the rest is read and dropped and 413 goes out.
 */
export const readBody = (
  res: HttpResponse,
  options: {
    readonly limit: number
    readonly declaredLength: number | undefined
    readonly streamed: boolean
    readonly onBody: (bytes: Uint8Array) => void
    readonly onStream: (stream: ReadableStream<Uint8Array>) => void
  },
  hooks: BodyHooks
) => {
  const { declaredLength, limit } = options
  let refusal: Refusal | undefined
  const tooLarge = (received: number, finished: boolean): boolean => {
    hooks.onTooLarge()
    refusal = new Refusal(res, limit, hooks.gone)
    return refusal.start(declaredLength === undefined ? undefined : declaredLength - received, finished)
  }
  if (declaredLength !== undefined && declaredLength > limit) {
    // Announced beyond the bound of what is drained: answered and closed at once, no body to read.
    if (tooLarge(0, false)) return
    res.onData(guardedCallback(hooks.crash, undefined, (chunk: ArrayBuffer, isLast: boolean) => refusal?.chunk(chunk.byteLength, isLast)))
    return
  }
  if (options.streamed) return streamBody(res, limit, () => refusal, tooLarge, options.onStream, hooks)
  let chunks: Array<Buffer> | undefined
  let size = 0
  res.onData(guardedCallback(hooks.crash, undefined, (chunk: ArrayBuffer, isLast: boolean) => {
    if (refusal !== undefined) return refusal.chunk(chunk.byteLength, isLast)
    if (hooks.isDone()) return
    size += chunk.byteLength
    if (size > limit) return void tooLarge(size, isLast)
    // The chunk is neutered after this callback: copied, unless it is the last (handed over during the callback).
    if (!isLast) return void (chunks ??= []).push(Buffer.from(chunk.slice(0)))
    const last = new Uint8Array(chunk)
    options.onBody(chunks === undefined ? last : Buffer.concat([...chunks, last]))
  }))
}

const streamBody = (
  res: HttpResponse,
  limit: number,
  refusal: () => Refusal | undefined,
  tooLarge: (received: number, finished: boolean) => boolean,
  onStream: (stream: ReadableStream<Uint8Array>) => void,
  hooks: BodyHooks
) => {
  let size = 0
  let paused = false
  let closed = false
  let controller: ReadableStreamDefaultController<Uint8Array> | undefined
  const fail = (reason: string) => {
    if (closed) return
    closed = true
    controller?.error(new Error(reason))
  }
  const resume = () => {
    if (paused && !hooks.isDone()) {
      paused = false
      res.resume()
    }
  }
  const stream = new ReadableStream<Uint8Array>({
    start: (c) => void (controller = c),
    pull: resume,
    // The handler stopped reading (it answered already): the rest is read and dropped.
    cancel: () => {
      closed = true
      resume()
    }
  }, { highWaterMark: 8 })
  hooks.onAbort(() => fail("The client went away during the upload"))
  res.onData(guardedCallback(hooks.crash, undefined, (chunk: ArrayBuffer, isLast: boolean) => {
    const refused = refusal()
    if (refused !== undefined) return refused.chunk(chunk.byteLength, isLast)
    if (hooks.isDone() || closed) return
    size += chunk.byteLength
    if (size > limit) {
      fail("The request body is too large")
      return void tooLarge(size, isLast)
    }
    // The chunk is neutered after this callback: copy it (uWS may end with an empty one: nothing to pass on).
    if (chunk.byteLength > 0) controller!.enqueue(new Uint8Array(chunk.slice(0)))
    if (isLast) {
      closed = true
      controller!.close()
    } else if ((controller!.desiredSize ?? 1) <= 0 && !paused) {
      paused = true
      res.pause()
    }
  }))
  onStream(stream)
}
