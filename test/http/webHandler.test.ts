import { HttpApp } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, Logger, LogLevel } from "effect"
import { makeHttpApp } from "../../src/http/Server.js"
import { DomainLive } from "../../src/main.js"
import { freshDatabase } from "../support/Database.js"
import { jwtSecret } from "../support/TestApp.js"

it.live("the HTTP app serves through a plain web handler, with no Node server (the way another listener carries it)", () =>
  Effect.gen(function*() {
    const database = yield* freshDatabase
    const config = ConfigProvider.fromMap(new Map(Object.entries({ ...database, JWT_SECRET: jwtSecret })))
    const context = yield* Layer.build(
      Layer.merge(DomainLive, NodeHttpServer.layerContext).pipe(Layer.provide(Layer.setConfigProvider(config)))
    )
    const app = yield* makeHttpApp.pipe(Effect.provide(context), Effect.withConfigProvider(config))
    const runtime = yield* Effect.provide(Effect.runtime<Layer.Layer.Success<typeof NodeHttpServer.layerContext>>(), context)
    const handler = HttpApp.toWebHandlerRuntime(runtime)(app)

    const health = yield* Effect.promise(() => handler(new Request("http://app.local/health")))
    expect(health.status).toBe(200)
    expect(yield* Effect.promise(() => health.json())).toEqual({ status: "ok" })

    const registered = yield* Effect.promise(() =>
      handler(new Request("http://app.local/auth/register", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ email: "web@test.local", password: "password-123", firstName: "W", lastName: "H" })
      }))
    )
    expect(registered.status).toBe(201)
    const docs = yield* Effect.promise(() => handler(new Request("http://app.local/api/openapi.json")))
    expect(docs.status).toBe(200)
    const missing = yield* Effect.promise(() => handler(new Request("http://app.local/nowhere")))
    expect(missing.status).toBe(404)
  }).pipe(Effect.scoped, Effect.provide(Logger.minimumLogLevel(LogLevel.Warning))))
