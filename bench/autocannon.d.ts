/**
 * The part of autocannon's API the benches use (the package ships no types, and only autocannon itself
 * is a dev dependency of the benches).
 */
declare module "autocannon" {
  import type { EventEmitter } from "node:events"

  namespace autocannon {
    interface Request {
      method?: "GET" | "POST" | "PUT" | "PATCH" | "DELETE"
      path?: string
      headers?: Record<string, string>
      body?: string | Buffer
      /** Called before each request is written; returns the request to send. */
      setupRequest?: (request: Request, context: Record<string, unknown>) => Request
      onResponse?: (status: number, body: string, context: Record<string, unknown>, headers: Record<string, unknown>) => void
    }

    interface Options {
      url: string
      connections?: number
      duration?: number
      amount?: number
      timeout?: number
      pipelining?: number
      overallRate?: number
      connectionRate?: number
      ignoreCoordinatedOmission?: boolean
      requests?: Array<Request>
      setupClient?: (client: Client) => void
      title?: string
    }

    interface Client extends EventEmitter {}

    interface Histogram {
      average: number
      mean: number
      stddev: number
      min: number
      max: number
      total: number
      p50: number
      p90: number
      p99: number
    }

    interface Result {
      title?: string
      duration: number
      requests: Histogram
      latency: Histogram
      errors: number
      timeouts: number
      non2xx: number
      resets: number
      mismatches: number
      "1xx": number
      "2xx": number
      "3xx": number
      "4xx": number
      "5xx": number
      statusCodeStats: Record<string, { count: number }>
    }

    interface Instance extends EventEmitter {
      stop(): void
      on(event: "response", listener: (client: Client, statusCode: number, resBytes: number, responseTime: number) => void): this
      on(event: "done", listener: (result: Result) => void): this
      on(event: "reqError", listener: (error: Error) => void): this
      on(event: string, listener: (...args: Array<any>) => void): this
    }
  }

  function autocannon(
    options: autocannon.Options,
    callback: (error: Error | null, result: autocannon.Result) => void
  ): autocannon.Instance

  export default autocannon
}
