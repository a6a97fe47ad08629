import { Effect } from "effect"
import { Metrics } from "../domain/ports/Metrics.js"
import { RateLimited, Unauthorized } from "../domain/Errors.js"

/**
 * What every REST door shares: the generic HttpApp path (src/http) and the two routes served on uWS directly
 * (src/server/FastRoutes.ts) answer from these, so the two cannot drift apart. The bodies of the problem
 * answers (`malformedBody`, `internalError`, `unavailable`, …) and `isJsonContentType` are in Middleware.ts;
 * the refusals before any route (413, 503 overloaded, 400 repeated length) in src/server/Guards.ts.
 */

/** The CORS origins of FRONTEND_URL (comma separated; `*`, or nothing, allows any). */
export const corsOrigins = (frontendUrl: string): ReadonlyArray<string> => {
  const listed = frontendUrl.split(",").map((origin) => origin.trim()).filter((origin) => origin !== "")
  return listed.length === 0 || listed.includes("*") ? ["*"] : listed
}

/** Answer headers a browser page on another origin may read (a 429's wait, a download's name and range). */
export const corsExposedHeaders: ReadonlyArray<string> = ["retry-after", "content-disposition", "content-range"]

/**
 * The token of an `Authorization: Bearer …` header: the scheme checked whatever its case, "" when there is none
 * (the platform itself cuts 7 characters off whatever the header says).
 */
export const bearerOf = (authorization: string | undefined): string =>
  authorization !== undefined && /^bearer\s/i.test(authorization) ? authorization.slice(7).trim() : ""

export const missingBearer = new Unauthorized({ message: "Missing bearer token" })

/** A 429 tells the client when to come back, in the Retry-After header as well as the body. */
export const retryAfterOf = (error: unknown): string | undefined =>
  error instanceof RateLimited ? String(error.retryAfterSeconds) : undefined

/**
 * The one log line per request: method and path (never the query string or headers, where tokens travel); and
 * its metrics (by route template, see infra/telemetry/Metrics.ts).
 */
export const logRequest = (method: string, path: string, status: number, start: number) =>
  Effect.flatMap(Metrics, (metrics) => {
    const ms = Date.now() - start
    metrics.httpRequest(method, path, status, ms / 1000)
    if (status === 413) metrics.httpRefused(413, "body_too_large")
    else if (status === 429) metrics.httpRefused(429, "rate_limited")
    else if (status === 503) metrics.httpRefused(503, "unavailable")
    return Effect.logInfo(`${method} ${path} ${status}`).pipe(Effect.annotateLogs({ ms }))
  })
