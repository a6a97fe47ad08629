/**
 * A fake FCM for `bench:ws --push`: the OAuth2 token endpoint and `messages:send`, answering 200 at once and
 * noting when each push arrived. It checks nothing (the tests do); it only counts.
 */
import * as Crypto from "node:crypto"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"

export interface PushFake {
  readonly serviceAccount: string
  readonly endpoint: string
  /** Arrival times (performance.now() ms) of the pushes so far. */
  readonly arrivals: Array<number>
  readonly close: () => Promise<void>
}

export const start = async (): Promise<PushFake> => {
  const { privateKey } = Crypto.generateKeyPairSync("rsa", { modulusLength: 2048 })
  const arrivals: Array<number> = []
  const server = Http.createServer((request, response) => {
    const chunks: Array<Buffer> = []
    request.on("data", (c: Buffer) => chunks.push(c))
    request.on("end", () => {
      if (request.url === "/token") {
        response.writeHead(200, { "content-type": "application/json" })
        return response.end(JSON.stringify({ access_token: Crypto.randomBytes(16).toString("hex"), expires_in: 3599 }))
      }
      arrivals.push(performance.now())
      response.writeHead(200, { "content-type": "application/json" })
      response.end(`{"name":"projects/bench/messages/${arrivals.length}"}`)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    serviceAccount: JSON.stringify({
      type: "service_account",
      project_id: "bench",
      client_email: "bench@bench.iam.gserviceaccount.com",
      private_key: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
      token_uri: `${base}/token`
    }),
    endpoint: base,
    arrivals,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
  }
}
