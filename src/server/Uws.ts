import { Data, Effect } from "effect"
import { createRequire } from "node:module"
import type * as Uws from "uWebSockets.js"

export class NativeUwsUnavailable extends Data.TaggedError("NativeUwsUnavailable")<{ readonly message: string }> {}

/**
 * The native uWebSockets.js addon, loaded directly: the package would fall
 * back silently to a slow JavaScript imitation when the binary does not load,
 * and the server must not run on that.
 */
export const load = Effect.try({
  try: (): typeof Uws => {
    const require = createRequire(import.meta.url)
    const binary = `uWebSockets.js/binaries/uws_${process.platform}_${process.arch}_${process.versions.modules}.node`
    const uws: typeof Uws = require(binary)
    // No `uWebSockets: 20` header on every answer: it tells the world what to attack. "silent" is the
    // addon's switch for uWS's Loop::setSilent (LoopData::noMark, read by HttpResponse::writeMark).
    uws._cfg("silent")
    return uws
  },
  catch: (cause) =>
    new NativeUwsUnavailable({
      message: `uWebSockets.js native binary unavailable for ${process.platform}-${process.arch} (Node ABI ${process.versions.modules}): refusing to start on the JavaScript fallback (${
        cause instanceof Error ? cause.message.split("\n")[0] : String(cause)
      })`
    })
})

export type { HttpRequest, HttpResponse, TemplatedApp, us_listen_socket, us_socket_context_t, WebSocket } from "uWebSockets.js"
