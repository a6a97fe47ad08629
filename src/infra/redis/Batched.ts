/**
 * Calls made during one turn of the event loop, sent to Redis as one command at the end of it. On this
 * path (every send counts a rate limit, bumps a page version and publishes an event) each command costs
 * the client more than the work it asks for, and each write to the socket costs a system call: a turn's
 * calls share both.
 *
 * `run` gets the turn's items in call order and answers each, in the same order; if it fails, every
 * call of the turn fails with its error.
 */
export const batched = <A, B>(run: (items: ReadonlyArray<A>) => Promise<ReadonlyArray<B>>) => {
  let waiting: Array<{ readonly item: A; readonly resolve: (b: B) => void; readonly reject: (error: unknown) => void }> = []
  const flush = () => {
    const batch = waiting
    waiting = []
    run(batch.map((call) => call.item)).then(
      (answers) => batch.forEach((call, i) => call.resolve(answers[i]!)),
      (error: unknown) => batch.forEach((call) => call.reject(error))
    )
  }
  return (item: A): Promise<B> =>
    new Promise<B>((resolve, reject) => {
      if (waiting.length === 0) setImmediate(flush)
      waiting.push({ item, resolve, reject })
    })
}
