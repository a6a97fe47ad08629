import type { SqlClient, Statement } from "@effect/sql"
import { Effect } from "effect"
import type { ConversationId } from "../../domain/chat/Model.js"
import type { HistoryQuery } from "../../domain/ports/MessagesRepo.js"

/** A history page's rows (one more than the limit is read to know whether there is more), ascending by seq. */
export const pageRows = <Row extends object>(
  client: SqlClient.SqlClient,
  conversationId: ConversationId,
  query: HistoryQuery,
  columns: Statement.Fragment
) => {
  const bounds = client.and([
    client`conversation_id = ${conversationId}`,
    ...(query.afterSeq === undefined ? [] : [client`seq > ${query.afterSeq}`]),
    ...(query.beforeSeq === undefined ? [] : [client`seq < ${query.beforeSeq}`])
  ])
  // Catching up reads forward from afterSeq; otherwise the newest page (before beforeSeq) is wanted.
  const order = query.afterSeq === undefined ? client`ORDER BY seq DESC` : client`ORDER BY seq ASC`
  return client<Row>`SELECT ${columns} FROM messages WHERE ${bounds} ${order} LIMIT ${query.limit + 1}`.pipe(
    Effect.map((rows) => {
      const hasMore = rows.length > query.limit
      const kept = rows.slice(0, query.limit)
      return { rows: query.afterSeq === undefined ? kept.reverse() : kept, hasMore }
    })
  )
}
