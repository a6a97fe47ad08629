import { it } from "@effect/vitest"
import { Effect, Logger, LogLevel } from "effect"
import { type Instance, startInstance } from "../support/Instances.js"
import { ownPostgres, ownRedis } from "../support/Services.js"
import { Client, clients, expectSound, pairs, settle, short, tally } from "./Traffic.js"

/** Sockets per user: a phone, a tablet, a few browser tabs… kept within any per-user cap. */
const perUser = 10
const conversationCount = short ? 15 : 75

it.live(
  `reconnect storm: ${conversationCount * 2 * perUser} sockets lose their instance at once and reconnect to the other, rejoin with sinceSeq and send; nothing acked lost, no duplicates, no gaps`,
  () =>
    Effect.gen(function*() {
      const pg = yield* ownPostgres
      const redis = yield* ownRedis
      const env = { DATABASE_URL: pg.url, REDIS_URL: redis.url }
      const [a, b] = yield* Effect.all([startInstance(env), startInstance(env)], { concurrency: 2 })
      const conversations = yield* pairs(a, conversationCount)
      const counts = tally()
      const targets = (): ReadonlyArray<Instance> => [a, b]
      const senders: Array<Client> = []
      const receivers: Array<Client> = []
      yield* clients(() =>
        conversations.flatMap((p, i) =>
          Array.from({ length: perUser }, (_, k) => {
            const sender = new Client(p, p.user, targets, counts, `s${i}.${k}`)
            const receiver = new Client(p, p.trainer, targets, counts, `r${i}.${k}`)
            senders.push(sender)
            receivers.push(receiver)
            return [sender, receiver]
          }).flat()
        )
      )
      // Some history first: every socket has a place to resume from.
      for (const s of senders) s.queue(1)
      yield* Effect.sleep("3 seconds")
      a.child.kill("SIGKILL")
      const faultEndedAt = Date.now()
      // Every socket reconnects at once (within 50–250 ms) and sends one more message.
      for (const s of senders) s.queue(1)
      const figures = yield* settle("reconnect-storm", {
        databaseUrl: pg.url,
        senders,
        receivers,
        counts,
        faultEndedAt,
        extra: () => {
          const everyAckMs = Math.max(...counts.ackTimes) - faultEndedAt
          const reopened = counts.opens.filter((t) => t >= faultEndedAt)
          return `sockets=${senders.length + receivers.length} allAckedMs=${everyAckMs} firstOpenMs=${Math.min(...reopened) - faultEndedAt} allOpenMs=${Math.max(...reopened) - faultEndedAt}`
        }
      })
      expectSound(figures)
    }).pipe(Effect.scoped, Effect.provide(Logger.minimumLogLevel(LogLevel.Warning))),
  300_000
)
