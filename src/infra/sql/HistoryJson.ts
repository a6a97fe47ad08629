import { SqlClient } from "@effect/sql"
import { Clock, Config, Context, Duration, Effect, Layer, Option } from "effect"
import type { ConversationId } from "../../domain/chat/Model.js"
import type { HistoryQuery } from "../../domain/ports/MessagesRepo.js"
import { PageVersions } from "../../domain/ports/PageVersions.js"
import type { PageJson } from "../wire/MessageJson.js"
import { NewestPages } from "../wire/NewestPages.js"
import { pageRows } from "./HistoryRows.js"

/** The newest-page cache of REST history reads (`HISTORY_CACHE_MB=0` turns it off). */
export const HistoryCacheConfig = Config.all({
  megabytes: Config.number("HISTORY_CACHE_MB").pipe(Config.withDefault(32)),
  ttl: Config.duration("HISTORY_CACHE_TTL").pipe(Config.withDefault(Duration.seconds(30)))
})

/**
 * History pages in their wire form, for REST: each message the JSON text of `encodeMessage`, byte for byte,
 * written straight from its row (history pages are the most read thing there is; this way their rows need no
 * decoding), the newest page of busy conversations from memory while its version holds. Access is the
 * domain's to check first (`Messages.readable`).
 */
export class HistoryJson extends Context.Tag("Infra/HistoryJson")<HistoryJson, {
  readonly page: (conversationId: ConversationId, query: HistoryQuery) => Effect.Effect<PageJson>
}>() {}

/** A `messages` row as history pages read it: column names as they are, timestamps as epoch milliseconds. */
interface WireRow {
  readonly id: string
  readonly conversation_id: string
  readonly seq: number
  readonly sender_id: string | null
  readonly receiver_id: string | null
  readonly content: string
  readonly type: string
  readonly is_read: boolean
  readonly read_at: number | null
  readonly file_url: string | null
  readonly file_name: string | null
  readonly client_message_id: string | null
  readonly created_at: number
  readonly updated_at: number
}

// Milliseconds cut off as the driver's Date cuts them, so the text equals `toISOString` of the decoded row.
const epochMs = (column: string) => `floor(extract(epoch FROM ${column}) * 1000)::float8 AS ${column}`
const wireColumns = [
  "id",
  "conversation_id",
  "seq",
  "sender_id",
  "receiver_id",
  "content",
  "type",
  "is_read",
  epochMs("read_at"),
  "file_url",
  "file_name",
  "client_message_id",
  epochMs("created_at"),
  epochMs("updated_at")
].join(", ")

const text = (value: string | null) => value === null ? "null" : JSON.stringify(value)
const iso = (ms: number | null) => ms === null ? "null" : `"${new Date(ms).toISOString()}"`

/**
 * The row as `JSON.stringify(encodeMessage(message))` writes it (same keys, same order), without
 * making a Message on the way: ids and the type are plain ASCII; free text goes through JSON.stringify.
 */
const wireJson = (r: WireRow): string => {
  const created = iso(r.created_at)
  return `{"id":"${r.id}","conversationId":"${r.conversation_id}","seq":${r.seq},"senderId":${text(r.sender_id)},` +
    `"receiverId":${text(r.receiver_id)},"content":${JSON.stringify(r.content)},"type":"${r.type}",` +
    `"isRead":${r.is_read},"readAt":${iso(r.read_at)},"fileUrl":${text(r.file_url)},"fileName":${text(r.file_name)},` +
    `"clientMessageId":${text(r.client_message_id)},"createdAt":${created},` +
    `"updatedAt":${r.updated_at === r.created_at ? created : iso(r.updated_at)}}`
}

export const layer = Layer.effect(
  HistoryJson,
  Effect.gen(function*() {
    // Rows read by column name: the driver's name transform is skipped.
    const raw = (yield* SqlClient.SqlClient).withoutTransforms()
    const asWire = raw.literal(wireColumns)
    const versions = yield* PageVersions
    const cacheConfig = yield* HistoryCacheConfig
    // Characters, about bytes for the ASCII-heavy JSON kept.
    const newest = new NewestPages(cacheConfig.megabytes * 1024 * 1024, Duration.toMillis(cacheConfig.ttl))

    const read = (id: ConversationId, query: HistoryQuery): Effect.Effect<PageJson> =>
      Effect.orDie(Effect.map(pageRows<WireRow>(raw, id, query, asWire), ({ hasMore, rows }) => ({
        messages: rows.map(wireJson),
        hasMore
      })))

    /**
     * The newest page (neither bound given) comes from the cache while the log's version has not
     * moved; the version is read before the query, so a page stored under it is never older than it.
     */
    const page = (id: ConversationId, query: HistoryQuery): Effect.Effect<PageJson> =>
      query.afterSeq !== undefined || query.beforeSeq !== undefined || cacheConfig.megabytes <= 0
        ? read(id, query)
        : Effect.flatMap(versions.current(id), (version) => {
          if (Option.isNone(version)) return read(id, query)
          return Effect.flatMap(Clock.currentTimeMillis, (now) => {
            const cached = newest.get(id, version.value, query.limit, now)
            return cached !== undefined
              ? Effect.succeed(cached)
              : Effect.tap(read(id, query), (fresh) => Effect.sync(() => newest.set(id, version.value, query.limit, fresh, now)))
          })
        })

    return HistoryJson.of({ page })
  })
)
