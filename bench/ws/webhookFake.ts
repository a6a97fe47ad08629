/**
 * A webhook receiver for `bench:ws --webhook`: answers 204 at once and notes when each event arrived. It
 * verifies nothing (the tests do); it only counts.
 */
import * as Http from "node:http"
import type { AddressInfo } from "node:net"

export interface WebhookFake {
  readonly url: string
  /** Arrival times (performance.now() ms) of the events so far. */
  readonly arrivals: Array<number>
  readonly close: () => Promise<void>
}

export const start = async (): Promise<WebhookFake> => {
  const arrivals: Array<number> = []
  const server = Http.createServer((request, response) => {
    request.resume()
    request.on("end", () => {
      arrivals.push(performance.now())
      response.writeHead(204).end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    arrivals,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
  }
}
