import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import * as Http from "node:http"
import * as TestApp from "../support/TestApp.js"
import { TestServer } from "../support/TestApp.js"
import { register } from "../support/Users.js"

const size = 20 * 1024 * 1024

/** Downloads `path`, taking nothing for `pauseMs` after the first bytes; resolves with what arrived. */
const stalledDownload = (url: string, token: string, pauseMs: number) =>
  Effect.async<{ readonly status: number; readonly bytes: number; readonly complete: boolean }>((resume) => {
    const request = Http.get(url, { headers: { authorization: `Bearer ${token}` } }, (response) => {
      let bytes = 0
      let paused = false
      response.on("data", (chunk: Buffer) => {
        bytes += chunk.byteLength
        if (!paused) {
          paused = true
          response.pause()
          setTimeout(() => response.resume(), pauseMs)
        }
      })
      const done = (complete: boolean) => resume(Effect.succeed({ status: response.statusCode ?? 0, bytes, complete }))
      response.on("end", () => done(response.complete))
      response.on("aborted", () => done(false))
      response.on("error", () => done(false))
    })
    request.on("error", () => resume(Effect.succeed({ status: 0, bytes: 0, complete: false })))
  })

layer(TestApp.layer(), { excludeTestServices: true })("downloads", (it) => {
  it.effect("a client that stops reading for 15 s (past uWS's 10 s) still gets every byte of a 20 MiB download", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const user = yield* register("download")
      const uploaded = yield* Effect.promise(() =>
        fetch(`${server.url}/chat/attachments?fileName=big.txt`, {
          method: "POST",
          headers: { authorization: `Bearer ${user.token}`, "content-type": "text/plain" },
          body: Buffer.alloc(size, "a")
        }).then((response) => response.json() as Promise<{ readonly url: string }>)
      )
      const result = yield* stalledDownload(`${server.url}${uploaded.url}`, user.token, 15_000)
      expect(result).toEqual({ status: 200, bytes: size, complete: true })
    }), 90_000)
})

layer(TestApp.layer({ HTTP_SEND_TIMEOUT: "2 seconds" }), { excludeTestServices: true })("downloads, short send timeout", (it) => {
  it.effect("HTTP_SEND_TIMEOUT: a download that moves no byte for that long is cut, well before uWS's 10 s", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const user = yield* register("download")
      const uploaded = yield* Effect.promise(() =>
        fetch(`${server.url}/chat/attachments?fileName=big.txt`, {
          method: "POST",
          headers: { authorization: `Bearer ${user.token}`, "content-type": "text/plain" },
          body: Buffer.alloc(size, "a")
        }).then((response) => response.json() as Promise<{ readonly url: string }>)
      )
      const started = Date.now()
      const result = yield* stalledDownload(`${server.url}${uploaded.url}`, user.token, 8000)
      expect(result.complete).toBe(false)
      expect(result.bytes).toBeLessThan(size)
      // Cut while the client slept (about 2 s after its last byte); it notices when it reads again.
      expect(Date.now() - started).toBeLessThan(12_000)
    }), 60_000)
})
