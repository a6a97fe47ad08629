import { Effect } from "effect"

/**
 * What a test client has received, and the waits on it: the client calls `wake` after each arrival (and when
 * it closes); `waitFor` resumes once its check finds something, `next` takes the next received item that
 * matches (after those `next` already took). A wait that times out fails and shows the last items.
 */
export const makeWaiting = <T>(received: ReadonlyArray<T>, names: { readonly items: string; readonly one: string }) => {
  const waiters = new Set<() => void>()
  let cursor = 0
  const wake = () => {
    for (const waiter of waiters) waiter()
  }
  const waitFor = <A>(check: () => A | undefined, timeoutMs: number, what: string) =>
    Effect.async<A, Error>((resume) => {
      const attempt = () => {
        const found = check()
        if (found !== undefined) {
          cleanup()
          resume(Effect.succeed(found))
        }
      }
      const timer = setTimeout(() => {
        cleanup()
        resume(Effect.fail(new Error(`timed out waiting for ${what}; ${names.items}: ${JSON.stringify(received.slice(-5))}`)))
      }, timeoutMs)
      const cleanup = () => {
        clearTimeout(timer)
        waiters.delete(attempt)
      }
      waiters.add(attempt)
      attempt()
    })
  const next = (match: (item: T) => boolean, timeoutMs = 3000) =>
    waitFor(() => {
      for (let i = cursor; i < received.length; i++) {
        if (match(received[i]!)) {
          cursor = i + 1
          return received[i]!
        }
      }
      return undefined
    }, timeoutMs, names.one).pipe(Effect.orDie)
  return { wake, waitFor, next }
}

/**
 * Runs `probe` every 25 ms until it answers something (not undefined), for at most `timeoutMs`: for what no
 * client is told of (a push at a fake provider, a row that goes away). A timeout dies naming `what`.
 */
export const pollUntil = <A, E, R>(probe: Effect.Effect<A | undefined, E, R>, timeoutMs: number, what: string) =>
  Effect.gen(function*() {
    const until = Date.now() + timeoutMs
    for (;;) {
      const found = yield* probe
      if (found !== undefined) return found
      if (Date.now() > until) return yield* Effect.dieMessage(`timed out waiting for ${what}`)
      yield* Effect.sleep("25 millis")
    }
  })

/** `pollUntil` for a condition that needs no effect to check. */
export const eventually = (check: () => boolean, timeoutMs: number, what: string) =>
  pollUntil(Effect.sync(() => (check() ? true : undefined)), timeoutMs, what)
