import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { pair, send } from "../support/Chat.js"
import * as TestApp from "../support/TestApp.js"
import { type Reply, TestServer } from "../support/TestApp.js"
import { type SignedIn, signInAdmin } from "../support/Users.js"

/**
 * Who may do what in chat, as one table: every endpoint × every kind of caller
 * × whose conversation, with the status the caller must get.
 *
 * The world: conversation A (its user and its trainer), conversation B (the
 * strangers: a user and the trainer they are assigned to), the admin, and no
 * token at all. Targets are A, B, and an id nobody has.
 */

type Caller = "user" | "trainer" | "admin" | "strangerUser" | "strangerTrainer" | "anonymous"
const callers: ReadonlyArray<Caller> = ["user", "trainer", "admin", "strangerUser", "strangerTrainer", "anonymous"]

type Scope = "A" | "B" | "unknown"
type MessageKey = "aFromUser" | "aFromTrainer" | "bFromUser" | "unknown"

interface Target {
  readonly label: string
  /** Whose conversation the target belongs to; null for endpoints without one. */
  readonly scope: Scope | null
  readonly message?: MessageKey
}

const noTarget: ReadonlyArray<Target> = [{ label: "-", scope: null }]
const conversationTargets: ReadonlyArray<Target> = [
  { label: "A", scope: "A" },
  { label: "B", scope: "B" },
  { label: "unknown", scope: "unknown" }
]
const messageTargets: ReadonlyArray<Target> = [
  { label: "A user→trainer", scope: "A", message: "aFromUser" },
  { label: "A trainer→user", scope: "A", message: "aFromTrainer" },
  { label: "B user→trainer", scope: "B", message: "bFromUser" },
  { label: "unknown", scope: "unknown", message: "unknown" }
]

const world = Effect.gen(function*() {
  const [admin, a, b] = yield* Effect.all([signInAdmin, pair, pair], { concurrency: "unbounded" })
  const sent = (who: SignedIn, conversationId: string, content: string) =>
    Effect.flatMap(send(who.token, conversationId, content), (reply) =>
      reply.status === 201
        ? Effect.succeed(reply.body.id as string)
        : Effect.dieMessage(`send: ${reply.status} ${JSON.stringify(reply.body)}`))
  const messages: Record<MessageKey, string> = {
    aFromUser: yield* sent(a.user, a.conversationId, "a: user to trainer"),
    aFromTrainer: yield* sent(a.trainer, a.conversationId, "a: trainer to user"),
    bFromUser: yield* sent(b.user, b.conversationId, "b: user to trainer"),
    unknown: crypto.randomUUID()
  }
  return { admin, a, b, unknownId: crypto.randomUUID(), messages }
})
type World = Effect.Effect.Success<typeof world>

const who = (w: World, caller: Caller): SignedIn | undefined =>
  ({
    user: w.a.user,
    trainer: w.a.trainer,
    admin: w.admin,
    strangerUser: w.b.user,
    strangerTrainer: w.b.trainer,
    anonymous: undefined
  })[caller]

/** The conversation the caller takes part in, if any. */
const own = (caller: Caller): "A" | "B" | undefined =>
  caller === "user" || caller === "trainer" ? "A" : caller === "strangerUser" || caller === "strangerTrainer" ? "B" : undefined

const conversationOf = (w: World, scope: Scope | null): string =>
  scope === "A" ? w.a.conversationId : scope === "B" ? w.b.conversationId : w.unknownId

const pairOf = (w: World, scope: "A" | "B") => scope === "A" ? w.a : w.b

interface Request {
  readonly method: string
  readonly path: string
  readonly body?: unknown
  /** The id the caller asked about, which an error may echo. */
  readonly id?: string
}

interface Endpoint {
  readonly name: string
  readonly targets: ReadonlyArray<Target>
  readonly request: (w: World, caller: Caller, target: Target) => Request
  /** One status per target, in `targets` order. */
  readonly expected: Record<Caller, ReadonlyArray<number>>
  /** The error `_tag` expected with each refusal status (401 is always Unauthorized). */
  readonly errors: Partial<Record<number, string>>
  /** More about a successful reply; throws (expect) when wrong. */
  readonly ok?: (w: World, caller: Caller, target: Target, body: any) => void
  /** Changes things for good (closing): run after everything else. */
  readonly last?: boolean
}

const ids = (items: ReadonlyArray<{ readonly id: string }>) => items.map((item) => item.id)
const ownIds = (w: World, caller: Caller) => {
  const mine = own(caller)
  return mine === undefined ? [] : [conversationOf(w, mine)]
}
const counterpartOf = (w: World, caller: Caller) =>
  caller === "user"
    ? w.a.trainer.id
    : caller === "trainer"
    ? w.a.user.id
    : caller === "strangerUser"
    ? w.b.trainer.id
    : caller === "strangerTrainer"
    ? w.b.user.id
    : undefined

const conversationPath = (suffix = "") => (w: World, _caller: Caller, target: Target): Request => {
  const id = conversationOf(w, target.scope)
  return { method: "GET", path: `/chat/conversations/${id}${suffix}`, id }
}

const endpoints: ReadonlyArray<Endpoint> = [
  {
    name: "POST /chat/conversations",
    targets: conversationTargets,
    // The target's counterpart for the caller's role; the admin names both sides.
    request: (w, caller, target) => {
      if (target.scope === "unknown" || target.scope === null) {
        const body = caller === "admin" ? { userId: w.unknownId, trainerId: w.unknownId } : { participantId: w.unknownId }
        return { method: "POST", path: "/chat/conversations", body, id: w.unknownId }
      }
      const p = pairOf(w, target.scope)
      if (caller === "admin") {
        return { method: "POST", path: "/chat/conversations", body: { userId: p.user.id, trainerId: p.trainer.id } }
      }
      const participantId = caller === "trainer" || caller === "strangerTrainer" ? p.user.id : p.trainer.id
      return { method: "POST", path: "/chat/conversations", body: { participantId }, id: participantId }
    },
    expected: {
      //               A    B    unknown
      user: [200, 403, 403],
      trainer: [200, 403, 403],
      admin: [200, 200, 403],
      strangerUser: [403, 200, 403],
      strangerTrainer: [403, 200, 403],
      anonymous: [401, 401, 401]
    },
    errors: { 403: "NotAssigned" },
    ok: (w, caller, target, body) => {
      expect(body.id).toBe(conversationOf(w, target.scope))
      expect(body.counterpart?.id ?? null).toBe(caller === "admin" ? null : counterpartOf(w, caller))
    }
  },
  {
    name: "GET /chat/conversations",
    targets: noTarget,
    request: () => ({ method: "GET", path: "/chat/conversations?limit=100" }),
    expected: {
      user: [200],
      trainer: [200],
      admin: [200],
      strangerUser: [200],
      strangerTrainer: [200],
      anonymous: [401]
    },
    errors: {},
    // Only the caller's own; the admin takes part in none.
    ok: (w, caller, _target, body) => {
      expect(ids(body.items)).toEqual(ownIds(w, caller))
      expect(body.total).toBe(ownIds(w, caller).length)
    }
  },
  {
    name: "GET /chat/conversations/:id",
    targets: conversationTargets,
    request: conversationPath(),
    expected: {
      user: [200, 404, 404],
      trainer: [200, 404, 404],
      admin: [200, 200, 404],
      strangerUser: [404, 200, 404],
      strangerTrainer: [404, 200, 404],
      anonymous: [401, 401, 401]
    },
    errors: { 404: "ConversationNotFound" },
    ok: (w, caller, target, body) => {
      expect(body.id).toBe(conversationOf(w, target.scope))
      expect(body.counterpart?.id ?? null).toBe(caller === "admin" ? null : counterpartOf(w, caller))
    }
  },
  {
    name: "GET /chat/conversations/:id/messages",
    targets: conversationTargets,
    request: conversationPath("/messages"),
    expected: {
      user: [200, 404, 404],
      trainer: [200, 404, 404],
      admin: [200, 200, 404],
      strangerUser: [404, 200, 404],
      strangerTrainer: [404, 200, 404],
      anonymous: [401, 401, 401]
    },
    errors: { 404: "ConversationNotFound" },
    ok: (w, _caller, target, body) => {
      expect(body.messages.length).toBeGreaterThan(0)
      for (const m of body.messages) expect(m.conversationId).toBe(conversationOf(w, target.scope))
    }
  },
  {
    name: "PUT /chat/conversations/:id/read",
    targets: conversationTargets,
    request: (w, caller, target) => ({ ...conversationPath("/read")(w, caller, target), method: "PUT", body: {} }),
    expected: {
      user: [200, 404, 404],
      trainer: [200, 404, 404],
      admin: [403, 403, 404],
      strangerUser: [404, 200, 404],
      strangerTrainer: [404, 200, 404],
      anonymous: [401, 401, 401]
    },
    errors: { 403: "Forbidden", 404: "ConversationNotFound" }
  },
  {
    name: "POST /chat/messages",
    targets: conversationTargets,
    request: (w, _caller, target) => {
      const id = conversationOf(w, target.scope)
      return { method: "POST", path: "/chat/messages", body: { conversationId: id, content: "knock knock" }, id }
    },
    expected: {
      user: [201, 404, 404],
      trainer: [201, 404, 404],
      admin: [403, 403, 404],
      strangerUser: [404, 201, 404],
      strangerTrainer: [404, 201, 404],
      anonymous: [401, 401, 401]
    },
    errors: { 403: "Forbidden", 404: "ConversationNotFound" },
    ok: (w, caller, target, body) => {
      expect(body).toMatchObject({
        conversationId: conversationOf(w, target.scope),
        senderId: who(w, caller)?.id,
        receiverId: counterpartOf(w, caller)
      })
    }
  },
  {
    name: "PUT /chat/messages/:id/read",
    targets: messageTargets,
    request: (w, _caller, target) => {
      const id = w.messages[target.message ?? "unknown"]
      return { method: "PUT", path: `/chat/messages/${id}/read`, id }
    },
    // The receiver may; the sender and the admin (no participant) are refused;
    // strangers cannot tell the message from one that does not exist.
    expected: {
      //               A u→t A t→u B u→t unknown
      user: [403, 200, 404, 404],
      trainer: [200, 403, 404, 404],
      admin: [403, 403, 403, 404],
      strangerUser: [404, 404, 403, 404],
      strangerTrainer: [404, 404, 200, 404],
      anonymous: [401, 401, 401, 401]
    },
    errors: { 403: "Forbidden", 404: "MessageNotFound" },
    ok: (w, caller, target, body) => {
      expect(body).toMatchObject({ id: w.messages[target.message ?? "unknown"], receiverId: who(w, caller)?.id, isRead: true })
      expect(body.readAt).not.toBeNull()
    }
  },
  {
    name: "GET /chat/messages/unread/count",
    targets: noTarget,
    request: () => ({ method: "GET", path: "/chat/messages/unread/count" }),
    expected: {
      user: [200],
      trainer: [200],
      admin: [200],
      strangerUser: [200],
      strangerTrainer: [200],
      anonymous: [401]
    },
    errors: {},
    ok: (w, caller, _target, body) => {
      const counted: Array<string> = body.byConversation.map((c: { conversationId: string }) => c.conversationId)
      for (const id of counted) expect(ownIds(w, caller)).toContain(id)
      expect(body.total).toBe(body.byConversation.reduce((sum: number, c: { count: number }) => sum + c.count, 0))
    }
  },
  {
    name: "GET /chat/admin/conversations",
    targets: noTarget,
    request: () => ({ method: "GET", path: "/chat/admin/conversations?limit=100" }),
    expected: {
      user: [403],
      trainer: [403],
      admin: [200],
      strangerUser: [403],
      strangerTrainer: [403],
      anonymous: [401]
    },
    errors: { 403: "Forbidden" },
    ok: (w, _caller, _target, body) => {
      expect(ids(body.items)).toEqual(expect.arrayContaining([w.a.conversationId, w.b.conversationId]))
    }
  },
  {
    name: "PUT /chat/admin/conversations/:id/close",
    targets: conversationTargets,
    request: (w, _caller, target) => {
      const id = conversationOf(w, target.scope)
      return { method: "PUT", path: `/chat/admin/conversations/${id}/close`, body: {}, id }
    },
    expected: {
      user: [403, 403, 403],
      trainer: [403, 403, 403],
      admin: [200, 200, 404],
      strangerUser: [403, 403, 403],
      strangerTrainer: [403, 403, 403],
      anonymous: [401, 401, 401]
    },
    errors: { 403: "Forbidden", 404: "ConversationNotFound" },
    ok: (w, _caller, target, body) => {
      expect(body).toMatchObject({ id: conversationOf(w, target.scope), status: "closed" })
    },
    last: true
  },
  {
    name: "GET /chat/admin/audit",
    targets: noTarget,
    request: () => ({ method: "GET", path: "/chat/admin/audit?limit=100" }),
    expected: {
      user: [403],
      trainer: [403],
      admin: [200],
      strangerUser: [403],
      strangerTrainer: [403],
      anonymous: [401]
    },
    errors: { 403: "Forbidden" }
  }
]

interface Row {
  readonly endpoint: Endpoint
  readonly caller: Caller
  readonly target: Target
  readonly status: number
}

const rows: ReadonlyArray<Row> = endpoints.flatMap((endpoint) =>
  callers.flatMap((caller) => {
    const statuses = endpoint.expected[caller]
    if (statuses.length !== endpoint.targets.length) {
      throw new Error(`${endpoint.name} | ${caller}: ${statuses.length} statuses for ${endpoint.targets.length} targets`)
    }
    return endpoint.targets.map((target, i) => ({ endpoint, caller, target, status: statuses[i]! }))
  })
)

const label = (row: Row) => `${row.endpoint.name} | ${row.caller} | ${row.target.label}`
const key = (endpoint: Endpoint, caller: Caller, target: Target) => `${endpoint.name} | ${caller} | ${target.label}`

interface Done {
  readonly request: Request
  readonly reply: Reply
}

/** Runs the row; describes what is wrong with the reply, if anything. */
const run = (w: World, row: Row, done: Map<string, Done>, problems: Array<string>) =>
  Effect.gen(function*() {
    const server = yield* TestServer
    const request = row.endpoint.request(w, row.caller, row.target)
    const token = who(w, row.caller)?.token
    const reply = yield* server.request(request.method, request.path, {
      ...(token === undefined ? {} : { token }),
      ...(request.body === undefined ? {} : { body: request.body })
    })
    done.set(label(row), { request, reply })
    const got = `${reply.status} ${JSON.stringify(reply.body).slice(0, 200)}`
    if (reply.status !== row.status) {
      problems.push(`${label(row)}: expected ${row.status}, got ${got}`)
      return
    }
    if (row.status >= 400) {
      const tag = row.status === 401 ? "Unauthorized" : row.endpoint.errors[row.status]
      if (reply.body?._tag !== tag) problems.push(`${label(row)}: expected ${row.status} ${tag}, got ${got}`)
      return
    }
    try {
      row.endpoint.ok?.(w, row.caller, row.target, reply.body)
    } catch (error) {
      problems.push(`${label(row)}: ${error instanceof Error ? error.message : String(error)}`)
    }
  })

/** The reply with the id the caller asked about blanked out: what must not differ between two ids. */
const shape = ({ reply, request }: Done) => ({
  status: reply.status,
  contentType: reply.headers.get("content-type"),
  contentLength: reply.headers.get("content-length"),
  body: request.id === undefined ? JSON.stringify(reply.body) : JSON.stringify(reply.body).replaceAll(request.id, "<id>")
})

/** Everything a refused request could have changed, as the participants and the audit log see it. */
const snapshot = (w: World) =>
  Effect.gen(function*() {
    const server = yield* TestServer
    const get = (token: string, path: string) =>
      Effect.map(server.request("GET", path, { token }), (reply) => ({ status: reply.status, body: reply.body }))
    const sides = [w.a.user, w.a.trainer, w.b.user, w.b.trainer] as const
    const scopeOf = (i: number) => (i < 2 ? w.a : w.b).conversationId
    return {
      views: yield* Effect.forEach(sides, (side, i) => get(side.token, `/chat/conversations/${scopeOf(i)}`)),
      lists: yield* Effect.forEach(sides, (side) => get(side.token, "/chat/conversations")),
      histories: yield* Effect.forEach(sides, (side, i) => get(side.token, `/chat/conversations/${scopeOf(i)}/messages`)),
      unread: yield* Effect.forEach(sides, (side) => get(side.token, "/chat/messages/unread/count")),
      // Reading the audit log is not itself audited.
      audit: (yield* get(w.admin.token, "/chat/admin/audit?limit=100")).body
    }
  })

layer(TestApp.layer(), { excludeTestServices: true })("chat authorization", (it) => {
  it.effect("every endpoint × caller × target answers as the matrix says; refusals write nothing and leak nothing", () =>
    Effect.gen(function*() {
      const w = yield* world
      const done = new Map<string, Done>()
      const problems: Array<string> = []

      // 1. Every refusal, then: nothing changed.
      const before = yield* snapshot(w)
      for (const row of rows.filter((r) => r.status >= 400)) yield* run(w, row, done, problems)
      const after = yield* snapshot(w)
      expect(after, "refused requests changed something").toEqual(before)
      expect(before.views.map((v) => v.body.lastSeq)).toEqual([2, 2, 1, 1])

      // 2. What is allowed; closing last, as it ends sends.
      const allowed = rows.filter((r) => r.status < 400)
      for (const row of [...allowed.filter((r) => !r.endpoint.last), ...allowed.filter((r) => r.endpoint.last)]) {
        yield* run(w, row, done, problems)
      }
      expect(problems, `rows that did not answer as expected:\n${problems.join("\n")}`).toEqual([])

      // 3. No id guessing reveals another conversation (or message): for everyone but the admin, an id
      // that exists but is not theirs gets exactly what an id that does not exist gets.
      const leaks: Array<string> = []
      for (const endpoint of endpoints) {
        const unknown = endpoint.targets.find((t) => t.scope === "unknown")
        if (unknown === undefined) continue
        for (const caller of callers.filter((c) => c !== "admin")) {
          const reference = shape(done.get(key(endpoint, caller, unknown))!)
          for (const target of endpoint.targets) {
            if (target.scope === null || target.scope === "unknown" || target.scope === own(caller)) continue
            const foreign = shape(done.get(key(endpoint, caller, target))!)
            if (JSON.stringify(foreign) !== JSON.stringify(reference)) {
              leaks.push(`${key(endpoint, caller, target)}: ${JSON.stringify(foreign)} vs unknown: ${JSON.stringify(reference)}`)
            }
          }
        }
      }
      expect(leaks, `existing ids told apart from unknown ones:\n${leaks.join("\n")}`).toEqual([])

      // 4. The allowed writes, and only they, happened: two sends and a closing notice each, seqs without a gap.
      const server = yield* TestServer
      const final = yield* Effect.forEach([w.a, w.b], (p) =>
        server.request("GET", `/chat/conversations/${p.conversationId}/messages`, { token: p.user.token }))
      expect(final.map((r) => r.body.messages.map((m: { seq: number }) => m.seq))).toEqual([[1, 2, 3, 4, 5], [1, 2, 3, 4]])
      expect(final.map((r) => r.body.messages.map((m: { type: string }) => m.type))).toEqual([
        ["text", "text", "text", "text", "system"],
        ["text", "text", "text", "system"]
      ])
      // Everyone read everything before the sends of step 2, each of which left its receiver one unread.
      const unread = yield* Effect.forEach([w.a.user, w.a.trainer, w.b.user, w.b.trainer], (side) =>
        server.request("GET", "/chat/messages/unread/count", { token: side.token }))
      expect(unread.map((r) => r.body.total)).toEqual([1, 1, 1, 1])

      // The admin's reads were audited; their refusals were not.
      const audit = yield* server.request("GET", "/chat/admin/audit?limit=100", { token: w.admin.token })
      const actions = (id: string) =>
        audit.body.items
          .filter((e: { targetId: string | null }) => e.targetId === id)
          .map((e: { action: string }) => e.action)
          .sort()
      expect(actions(w.a.conversationId)).toEqual(["conversation.close", "conversation.messages.view", "conversation.view"])
      expect(actions(w.b.conversationId)).toEqual(["conversation.close", "conversation.messages.view", "conversation.view"])
      expect(actions(w.unknownId)).toEqual([])
    }))
})
