/** The REST calls the benches make to set up their data (plain fetch, outside the measured load). */

export interface RestReply {
  readonly status: number
  readonly body: any
}

export const call = async (
  base: string,
  method: string,
  path: string,
  options: { token?: string; body?: unknown } = {}
): Promise<RestReply> => {
  const headers: Record<string, string> = {}
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`
  if (options.body !== undefined) headers["content-type"] = "application/json"
  const response = await fetch(base + path, {
    method,
    headers,
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) })
  })
  const text = await response.text()
  let body: unknown = text
  try {
    body = text === "" ? null : JSON.parse(text)
  } catch {
    // not JSON
  }
  return { status: response.status, body }
}

export const expectStatus = (reply: RestReply, status: number, what: string): any => {
  if (reply.status !== status) {
    throw new Error(`${what}: expected ${status}, got ${reply.status} ${JSON.stringify(reply.body).slice(0, 300)}`)
  }
  return reply.body
}

/** Runs `f` over `items`, at most `n` at a time, results in the items' order. */
export const pool = async <T, R>(items: ReadonlyArray<T>, n: number, f: (item: T, index: number) => Promise<R>) => {
  const results = new Array<R>(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const i = next++
      results[i] = await f(items[i]!, i)
    }
  }
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker))
  return results
}
