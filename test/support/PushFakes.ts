import { Effect, type Scope } from "effect"
import ece from "http_ece"
import { importSPKI, jwtVerify } from "jose"
import * as Crypto from "node:crypto"
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Http2 from "node:http2"
import * as Https from "node:https"
import * as Os from "node:os"
import * as Path from "node:path"
import type { AddressInfo } from "node:net"
import webpush from "web-push"

/** What a fake provider answers next for a device: statuses queued per token, 200 once they run out. */
export interface Script {
  /** Answers for this token, in order (e.g. [503, 200]); afterwards 200. */
  readonly answer: (token: string, ...statuses: ReadonlyArray<number>) => void
}

const scripted = () => {
  const queues = new Map<string, Array<number>>()
  return {
    answer: (token: string, ...statuses: ReadonlyArray<number>) => void queues.set(token, [...statuses]),
    next: (token: string) => queues.get(token)?.shift() ?? 200
  }
}

const listen = (server: Http.Server | Https.Server) =>
  Effect.acquireRelease(
    Effect.async<number>((resume) => {
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed((server.address() as AddressInfo).port)))
    }),
    () => Effect.async<void>((resume) => {
      server.closeAllConnections?.()
      server.close(() => resume(Effect.void))
    })
  )

const bodyOf = (request: Http.IncomingMessage | Http2.Http2ServerRequest) =>
  new Promise<Buffer>((resolve) => {
    const chunks: Array<Buffer> = []
    request.on("data", (c: Buffer) => chunks.push(c))
    request.on("end", () => resolve(Buffer.concat(chunks)))
  })

// ------------------------------------------------------------------------------------------------ Web Push

export interface WebPushReceived {
  readonly subscription: string
  readonly payload: any
  readonly ttl: string | undefined
  readonly urgency: string | undefined
}

export interface WebPushFake extends Script {
  readonly vapid: { readonly publicKey: string; readonly privateKey: string; readonly subject: string }
  /** A new browser subscription on this receiver (its keys stay here, to decrypt what comes). */
  readonly subscribe: () => { endpoint: string; keys: { p256dh: string; auth: string } }
  readonly received: Array<WebPushReceived>
  /** Requests refused for a bad VAPID signature or an undecryptable body. */
  readonly rejected: Array<string>
}

/**
 * A certificate for 127.0.0.1 (push services are HTTPS only), trusted by this process's default HTTPS agent,
 * which `web-push` sends through.
 */
const localCertificate = () => {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "push-tls-"))
  try {
    execFileSync("openssl", [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
      "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
      "-keyout", Path.join(dir, "key.pem"), "-out", Path.join(dir, "cert.pem")
    ], { stdio: "ignore" })
    const cert = Fs.readFileSync(Path.join(dir, "cert.pem"), "utf8")
    const key = Fs.readFileSync(Path.join(dir, "key.pem"), "utf8")
    const trusted = Https.globalAgent.options.ca
    Https.globalAgent.options.ca = [...(Array.isArray(trusted) ? trusted : trusted === undefined ? [] : [trusted]), cert]
    return { cert, key }
  } finally {
    Fs.rmSync(dir, { recursive: true, force: true })
  }
}

/**
 * A push service: checks each request's VAPID JWT against the server's public key (RFC 8292) and decrypts the
 * payload with the subscription's private key and auth secret (RFC 8291), as a browser would.
 */
export const webPushFake: Effect.Effect<WebPushFake, never, Scope.Scope> = Effect.gen(function*() {
  const vapid = { ...webpush.generateVAPIDKeys(), subject: "mailto:ops@test.local" }
  const subscriptions = new Map<string, { ecdh: Crypto.ECDH; auth: string }>()
  const received: Array<WebPushReceived> = []
  const rejected: Array<string> = []
  const script = scripted()
  const publicJwk = {
    kty: "EC",
    crv: "P-256",
    x: Buffer.from(vapid.publicKey, "base64url").subarray(1, 33).toString("base64url"),
    y: Buffer.from(vapid.publicKey, "base64url").subarray(33, 65).toString("base64url")
  }
  const verifier = Crypto.createPublicKey({ key: publicJwk, format: "jwk" })
  let base = ""
  const server = Https.createServer(localCertificate(), (request, response) => {
    void (async () => {
      const body = await bodyOf(request)
      const id = request.url?.split("/").pop() ?? ""
      const sub = subscriptions.get(id)
      if (sub === undefined) return response.writeHead(404).end()
      try {
        const auth = String(request.headers.authorization ?? "")
        const match = /^vapid t=([^,]+),\s*k=(.+)$/.exec(auth)
        if (match === null || match[2] !== vapid.publicKey) throw new Error(`no VAPID authorization: ${auth}`)
        const { payload } = await jwtVerify(match[1]!, verifier, { audience: new URL(base).origin })
        if (payload.sub !== vapid.subject) throw new Error("VAPID subject")
        const plain = ece.decrypt(body, { version: "aes128gcm", privateKey: sub.ecdh, authSecret: sub.auth })
        const status = script.next(id)
        if (status === 201 || status === 200) {
          received.push({
            subscription: id,
            payload: JSON.parse(plain.toString("utf8")),
            ttl: request.headers.ttl as string | undefined,
            urgency: request.headers.urgency as string | undefined
          })
          return response.writeHead(201).end()
        }
        response.writeHead(status, status === 429 || status >= 500 ? { "retry-after": "0" } : {}).end("scripted")
      } catch (error) {
        rejected.push(String(error))
        response.writeHead(400).end()
      }
    })()
  })
  const port = yield* listen(server)
  base = `https://127.0.0.1:${port}`
  return {
    vapid,
    received,
    rejected,
    answer: script.answer,
    subscribe: () => {
      const ecdh = Crypto.createECDH("prime256v1")
      ecdh.generateKeys()
      const auth = Crypto.randomBytes(16).toString("base64url")
      const id = Crypto.randomUUID()
      subscriptions.set(id, { ecdh, auth })
      return { endpoint: `${base}/push/${id}`, keys: { p256dh: ecdh.getPublicKey().toString("base64url"), auth } }
    }
  }
})

// ------------------------------------------------------------------------------------------------ FCM

export interface FcmReceived {
  readonly token: string
  readonly message: any
}

export interface FcmFake extends Script {
  /** Requests for this token are taken and never answered (a provider that hangs), and counted in `held`. */
  readonly hold: (token: string) => void
  readonly held: Array<string>
  /** Answers the held requests now, with 200 (each then counts as received). */
  readonly release: () => void
  /** The service account file's content (JSON), pointing `token_uri` here. */
  readonly serviceAccount: string
  readonly endpoint: string
  readonly received: Array<FcmReceived>
  readonly tokensIssued: () => number
  readonly rejected: Array<string>
}

/** FCM's OAuth2 token endpoint (checking the signed assertion) and `messages:send` (checking the bearer). */
export const fcmFake: Effect.Effect<FcmFake, never, Scope.Scope> = Effect.gen(function*() {
  const { privateKey, publicKey } = Crypto.generateKeyPairSync("rsa", { modulusLength: 2048 })
  const verifier = yield* Effect.promise(() =>
    importSPKI(publicKey.export({ type: "spki", format: "pem" }).toString(), "RS256")
  )
  const issued = new Set<string>()
  const holding = new Set<string>()
  const held: Array<string> = []
  const waiting: Array<() => void> = []
  const received: Array<FcmReceived> = []
  const rejected: Array<string> = []
  const script = scripted()
  const project = "trainer-chat-test"
  let base = ""
  const server = Http.createServer((request, response) => {
    void (async () => {
      const body = (await bodyOf(request)).toString("utf8")
      try {
        if (request.url === "/token") {
          const form = new URLSearchParams(body)
          if (form.get("grant_type") !== "urn:ietf:params:oauth:grant-type:jwt-bearer") throw new Error("grant_type")
          const { payload } = await jwtVerify(form.get("assertion") ?? "", verifier, { audience: `${base}/token` })
          if (payload.iss !== "push@trainer-chat-test.iam.gserviceaccount.com") throw new Error("iss")
          if (payload.scope !== "https://www.googleapis.com/auth/firebase.messaging") throw new Error("scope")
          const token = Crypto.randomBytes(16).toString("hex")
          issued.add(token)
          return response.writeHead(200, { "content-type": "application/json" }).end(
            JSON.stringify({ access_token: token, expires_in: 3599, token_type: "Bearer" })
          )
        }
        if (request.url !== `/v1/projects/${project}/messages:send`) return response.writeHead(404).end()
        const bearer = String(request.headers.authorization ?? "").replace(/^Bearer /, "")
        if (!issued.has(bearer)) {
          rejected.push("bearer")
          return response.writeHead(401).end()
        }
        const { message } = JSON.parse(body)
        if (holding.has(message.token)) {
          holding.delete(message.token)
          held.push(message.token)
          waiting.push(() => {
            received.push({ token: message.token, message })
            response.writeHead(200, { "content-type": "application/json" }).end(
              JSON.stringify({ name: `projects/${project}/messages/${received.length}` })
            )
          })
          return
        }
        const status = script.next(message.token)
        if (status === 200) {
          received.push({ token: message.token, message })
          return response.writeHead(200, { "content-type": "application/json" }).end(
            JSON.stringify({ name: `projects/${project}/messages/${received.length}` })
          )
        }
        const error = status === 404
          ? { code: 404, status: "NOT_FOUND", details: [{ errorCode: "UNREGISTERED" }] }
          : { code: status, status: "UNAVAILABLE" }
        response.writeHead(status, { "content-type": "application/json", "retry-after": "0" }).end(JSON.stringify({ error }))
      } catch (error) {
        rejected.push(String(error))
        response.writeHead(400).end()
      }
    })()
  })
  const port = yield* listen(server)
  base = `http://127.0.0.1:${port}`
  return {
    serviceAccount: JSON.stringify({
      type: "service_account",
      project_id: project,
      private_key_id: "k1",
      private_key: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
      client_email: "push@trainer-chat-test.iam.gserviceaccount.com",
      token_uri: `${base}/token`
    }),
    endpoint: base,
    received,
    rejected,
    answer: script.answer,
    hold: (token) => void holding.add(token),
    held,
    release: () => {
      for (const answer of waiting.splice(0)) answer()
    },
    tokensIssued: () => issued.size
  }
})

// ------------------------------------------------------------------------------------------------ APNs

export interface ApnsReceived {
  readonly token: string
  readonly headers: Http2.IncomingHttpHeaders
  readonly payload: any
}

export interface ApnsFake extends Script {
  readonly key: string
  readonly keyId: string
  readonly teamId: string
  readonly topic: string
  readonly endpoint: string
  readonly received: Array<ApnsReceived>
  readonly rejected: Array<string>
}

/** APNs over cleartext HTTP/2: checks the provider token (ES256, key id, team) and the topic. */
export const apnsFake: Effect.Effect<ApnsFake, never, Scope.Scope> = Effect.gen(function*() {
  const { privateKey, publicKey } = Crypto.generateKeyPairSync("ec", { namedCurve: "P-256" })
  const keyId = "ABC123DEFG"
  const teamId = "TEAM123456"
  const topic = "com.example.trainerchat"
  const received: Array<ApnsReceived> = []
  const rejected: Array<string> = []
  const script = scripted()
  const server = Http2.createServer()
  const sessions = new Set<Http2.ServerHttp2Session>()
  server.on("session", (session) => {
    sessions.add(session)
    session.on("close", () => sessions.delete(session))
  })
  server.on("stream", (stream, headers) => {
    const chunks: Array<Buffer> = []
    stream.on("data", (c: Buffer) => chunks.push(c))
    stream.on("end", () => {
      void (async () => {
        try {
          const jwt = String(headers.authorization ?? "").replace(/^bearer /, "")
          const { payload, protectedHeader } = await jwtVerify(jwt, publicKey, { algorithms: ["ES256"] })
          if (protectedHeader.kid !== keyId || payload.iss !== teamId) throw new Error("provider token")
          if (headers["apns-topic"] !== topic) {
            stream.respond({ ":status": 400 })
            return stream.end(JSON.stringify({ reason: "DeviceTokenNotForTopic" }))
          }
          const token = decodeURIComponent(String(headers[":path"]).replace(/^\/3\/device\//, ""))
          const status = script.next(token)
          if (status === 200) {
            received.push({ token, headers, payload: JSON.parse(Buffer.concat(chunks).toString("utf8")) })
            stream.respond({ ":status": 200, "apns-id": Crypto.randomUUID() })
            return stream.end()
          }
          stream.respond({ ":status": status, "content-type": "application/json" })
          stream.end(JSON.stringify({ reason: status === 410 ? "Unregistered" : "ServiceUnavailable" }))
        } catch (error) {
          rejected.push(String(error))
          stream.respond({ ":status": 403 })
          stream.end(JSON.stringify({ reason: "InvalidProviderToken" }))
        }
      })()
    })
  })
  const port = yield* Effect.acquireRelease(
    Effect.async<number>((resume) => {
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed((server.address() as AddressInfo).port)))
    }),
    () =>
      Effect.async<void>((resume) => {
        for (const session of sessions) session.destroy()
        server.close(() => resume(Effect.void))
      })
  )
  return {
    key: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    keyId,
    teamId,
    topic,
    endpoint: `http://127.0.0.1:${port}`,
    received,
    rejected,
    answer: script.answer
  }
})
