import { HttpApi, OpenApi } from "@effect/platform"
import { Validator } from "@seriousme/openapi-schema-validator"
import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { Api } from "../../src/http/Api.js"
import * as TestApp from "../support/TestApp.js"
import { TestServer } from "../support/TestApp.js"
import { register } from "../support/Users.js"

const methods = ["get", "post", "put", "patch", "delete"] as const
const sampleId = "00000000-0000-4000-8000-000000000000"
const concrete = (path: string) => path.replace(/\{[^}]+\}/g, sampleId)

layer(TestApp.layer(), { excludeTestServices: true })("system", (it) => {
  it.effect("/health is alive and /ready names the database it reached", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      expect(yield* server.request("GET", "/health")).toMatchObject({ status: 200, body: { status: "ok" } })
      const ready = yield* server.request("GET", "/ready")
      expect(ready.status).toBe(200)
      expect(ready.body).toEqual({
        status: "ready",
        database: process.env.DATABASE_URL ? "postgres" : "pglite",
        shared: process.env.REDIS_URL ? "redis-up" : "memory",
        push: []
      })
    }))

  it.effect("the OpenAPI document is valid OpenAPI, and every endpoint has a summary, its security and its errors", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const reply = yield* server.request("GET", "/api/openapi.json")
      expect(reply.status).toBe(200)
      const validation = yield* Effect.promise(() => new Validator().validate(reply.body))
      expect(validation.errors ?? []).toEqual([])
      expect(validation.valid).toBe(true)
      expect(reply.body).toEqual(JSON.parse(JSON.stringify(OpenApi.fromApi(Api))))

      const publicOps = new Set(["system.health", "system.ready", "auth.register", "auth.login", "auth.refresh", "auth.requestPasswordReset", "auth.confirmPasswordReset"])
      for (const [path, item] of Object.entries<Record<string, any>>(reply.body.paths)) {
        for (const method of methods) {
          const op = item[method]
          if (op === undefined) continue
          const where = `${method.toUpperCase()} ${path}`
          expect(op.summary, where).toBeTruthy()
          const codes = Object.keys(op.responses)
          expect(codes.some((code) => code.startsWith("2")), where).toBe(true)
          expect(codes.some((code) => code.startsWith("4") || code.startsWith("5")), where).toBe(true)
          if (publicOps.has(op.operationId)) {
            expect(op.security ?? [], where).toEqual([])
          } else {
            expect(op.security, where).toEqual([{ bearer: [] }])
            expect(codes, where).toContain("401")
          }
        }
      }
      expect(reply.body.components.securitySchemes.bearer).toMatchObject({ type: "http", scheme: "bearer" })
    }))

  it.effect("the OpenAPI document names its server, leaks no internal schema names, and describes files as served", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const doc = (yield* server.request("GET", "/api/openapi.json")).body
      expect(doc.servers).toEqual([{ url: "/", description: "This server" }])
      const names = Object.keys(doc.components.schemas)
      for (const internal of ["Trim", "Int", "PropertyKey", "DateTimeUtc", "PersistedFile"]) expect(names).not.toContain(internal)
      expect(names.filter((name) => !/^[A-Z][A-Za-z]*$/.test(name))).toEqual([])
      // Every $ref points at a schema that exists.
      const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)].map((m) => m[1])
      expect(refs.filter((ref) => !names.includes(ref!))).toEqual([])
      expect(names).toContain("User")

      const fileTypes = ["image/jpeg", "image/png", "image/webp", "image/gif", "application/pdf", "text/plain"]
      const download = doc.paths["/chat/attachments/{id}"].get
      expect(Object.keys(download.responses)).toEqual(expect.arrayContaining(["200", "206", "304", "404", "416"]))
      expect(Object.keys(download.responses["200"].content)).toEqual(expect.arrayContaining(fileTypes))
      expect(download.responses["200"].content["application/octet-stream"]).toBeUndefined()
      expect(download.responses["206"].headers["Content-Range"]).toBeDefined()
      expect(download.parameters.map((p: { name: string }) => p.name)).toEqual(expect.arrayContaining(["Range", "If-None-Match"]))
      const upload = doc.paths["/chat/attachments"].post
      expect(Object.keys(upload.requestBody.content)).toEqual(expect.arrayContaining(["multipart/form-data", ...fileTypes]))
    }))

  it.effect("every route of the API is documented, and no undocumented method answers", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const doc = (yield* server.request("GET", "/api/openapi.json")).body
      const documented = new Set<string>()
      for (const [path, item] of Object.entries<Record<string, unknown>>(doc.paths)) {
        for (const method of methods) if (item[method] !== undefined) documented.add(`${method} ${path}`)
      }
      const declared: Array<string> = []
      HttpApi.reflect(Api, {
        onGroup: () => {},
        onEndpoint: ({ endpoint }) => {
          declared.push(`${endpoint.method.toLowerCase()} ${endpoint.path.replace(/:(\w+)/g, "{$1}")}`)
        }
      })
      expect([...documented].sort()).toEqual(declared.sort())

      // Probe every method on every documented path: what no documented route matches is not served.
      const templates = [...documented].map((entry) => {
        const [method, path] = entry.split(" ") as [string, string]
        return { method, pattern: new RegExp(`^${path.replace(/\{[^}]+\}/g, "[^/]+")}$`) }
      })
      for (const path of Object.keys(doc.paths)) {
        for (const method of methods) {
          const url = concrete(path)
          const reply = yield* server.request(method.toUpperCase(), url)
          const served = !(reply.status === 404 && reply.body?._tag === "RouteNotFound")
          const matches = templates.some((t) => t.method === method && t.pattern.test(url))
          expect(served, `${method} ${url} -> ${reply.status}`).toBe(matches)
        }
      }
    }))

  it.effect("Swagger UI is served at /api without any outside script or stylesheet", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const reply = yield* server.request("GET", "/api")
      expect(reply.status).toBe(200)
      expect(reply.headers.get("content-type")).toContain("text/html")
      expect(reply.body).toContain("SwaggerUIBundle")
      expect(reply.body).not.toMatch(/<(script|link)[^>]+(src|href)=["']https?:/i)
      // Its script and stylesheet come from this server, and the page reads this server's document.
      const assets = [...(reply.body as string).matchAll(/<(?:script|link)[^>]+(?:src|href)="([^"]+)"/g)].map((m) => m[1]!)
      expect(assets.sort()).toEqual(["/api/swagger-ui-bundle.js", "/api/swagger-ui.css"])
      for (const asset of assets) {
        const got = yield* Effect.promise(() => fetch(server.url + asset))
        const text = yield* Effect.promise(() => got.text())
        expect([got.status, got.headers.get("content-type")?.split(";")[0]]).toEqual([
          200,
          asset.endsWith(".js") ? "text/javascript" : "text/css"
        ])
        expect(text.length).toBeGreaterThan(10_000)
      }
      expect(reply.body).toContain(`url: "/api/openapi.json"`)
    }))

  it.effect("unknown routes are a JSON 404", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const reply = yield* server.request("GET", "/no/such/route?token=abc")
      expect(reply.status).toBe(404)
      expect(reply.body).toEqual({ _tag: "RouteNotFound", message: "No such route: see /api for the routes" })
    }))

  it.effect("no error response carries a stack trace", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const user = yield* register("stack")
      const replies = [
        yield* server.request("GET", `/users/not-a-uuid`, { token: user.token }),
        yield* server.request("POST", "/auth/login", { raw: "{", headers: { "content-type": "application/json" } }),
        yield* server.request("PATCH", `/users/${user.id}`, { token: user.token, body: { firstName: 42 } })
      ]
      for (const reply of replies) {
        expect(reply.status).toBe(400)
        expect(JSON.stringify(reply.body)).not.toMatch(/\bat .+:\d+:\d+|node_modules|\.ts:/)
      }
    }))
})

layer(TestApp.layer({ FRONTEND_URL: "https://app.example, https://admin.example" }), { excludeTestServices: true })(
  "CORS",
  (it) => {
    it.effect("allows the configured origins only", () =>
      Effect.gen(function*() {
        const server = yield* TestServer
        const preflight = (origin: string) =>
          server.request("OPTIONS", "/users/me", {
            headers: { origin, "access-control-request-method": "GET", "access-control-request-headers": "authorization" }
          })
        const allowed = yield* preflight("https://admin.example")
        expect(allowed.status).toBe(204)
        expect(allowed.headers.get("access-control-allow-origin")).toBe("https://admin.example")
        expect(allowed.headers.get("access-control-allow-headers")).toContain("authorization")
        const denied = yield* preflight("https://evil.example")
        expect(denied.headers.get("access-control-allow-origin")).toBeNull()
        const simple = yield* server.request("GET", "/health", { headers: { origin: "https://app.example" } })
        expect(simple.headers.get("access-control-allow-origin")).toBe("https://app.example")
      }))
  }
)

const logs: Array<string> = []
layer(TestApp.layer({}, { logs }), { excludeTestServices: true })("request logs", (it) => {
  it.effect("name method, path and status, never tokens or passwords", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const password = "very-secret-password-42"
      const reply = yield* server.request("POST", "/auth/register", {
        body: { email: "logs@test.local", password, firstName: "Log", lastName: "Test" }
      })
      expect(reply.status).toBe(201)
      const token: string = reply.body.accessToken
      yield* server.request("GET", `/users/me?token=${token}`, { token })
      yield* server.request("POST", "/auth/login", { body: { email: "logs@test.local", password: "wrong-password-99" } })

      const text = logs.join("\n")
      expect(text).toContain(`message="POST /auth/register 201"`)
      expect(text).toContain(`message="GET /users/me 200"`)
      expect(text).not.toContain(password)
      expect(text).not.toContain("wrong-password-99")
      expect(text).not.toContain(token)
      expect(text).not.toContain(TestApp.jwtSecret)
    }))
})
