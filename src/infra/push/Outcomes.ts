/** A `Retry-After` header (seconds, or an HTTP date) in milliseconds from now; undefined when absent or unreadable. */
export const retryAfterMs = (header: string | null | undefined, now = Date.now()): number | undefined => {
  if (header === null || header === undefined || header.trim() === "") return undefined
  const seconds = Number(header)
  if (Number.isFinite(seconds)) return Math.max(0, Math.min(seconds, 86_400)) * 1000
  const at = Date.parse(header)
  return Number.isNaN(at) ? undefined : Math.max(0, Math.min(at - now, 86_400_000))
}
