/**
 * What a bench run must undo (databases, servers, temporary directories), in reverse order of
 * registration, once: at the end, or on SIGINT/SIGTERM (then exit 130).
 */
export const makeCleanups = (log: (message: string) => void) => {
  const cleanups: Array<() => Promise<unknown>> = []
  let cleaning: Promise<void> | undefined
  const cleanup = () =>
    (cleaning ??= (async () => {
      for (const f of cleanups.reverse()) {
        try {
          await f()
        } catch (error) {
          console.error("cleanup:", error)
        }
      }
    })())
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      log(`${signal}: cleaning up`)
      void cleanup().finally(() => process.exit(130))
    })
  }
  return { cleanups, cleanup }
}
