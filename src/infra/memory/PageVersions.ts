import { Effect, Layer, Option } from "effect"
import { PageVersions } from "../../domain/ports/PageVersions.js"

/** One instance: every change goes through this process, so a counter in its memory is exact. */
export const layer = Layer.sync(PageVersions, () => {
  const versions = new Map<string, number>()
  return PageVersions.of({
    bump: (id) => Effect.sync(() => void versions.set(id, (versions.get(id) ?? 0) + 1)),
    bumpAll: (ids) =>
      Effect.sync(() => {
        for (const id of ids) versions.set(id, (versions.get(id) ?? 0) + 1)
      }),
    current: (id) => Effect.sync(() => Option.some(String(versions.get(id) ?? 0)))
  })
})
