import { expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Option } from "effect"
import { RedisConfig } from "../../src/infra/redis/Redis.js"

const read = (env: Record<string, string>) =>
  Effect.withConfigProvider(RedisConfig, ConfigProvider.fromMap(new Map(Object.entries(env))))

it.effect("REDIS_SENTINELS: the sentinels and the name they watch, instead of a URL; a list that is not host:port is refused by name", () =>
  Effect.gen(function*() {
    const sentinel = yield* read({ REDIS_SENTINELS: "10.0.0.1:26379, sentinel-b:26380", REDIS_SENTINEL_NAME: "chat" })
    expect(Option.getOrThrow(sentinel).sentinels).toEqual({
      nodes: [{ host: "10.0.0.1", port: 26379 }, { host: "sentinel-b", port: 26380 }],
      name: "chat"
    })
    expect(Option.getOrThrow(yield* read({ REDIS_SENTINELS: "127.0.0.1:26379" })).sentinels?.name).toBe("mymaster")
    expect(Option.getOrThrow(yield* read({ REDIS_URL: "redis://127.0.0.1:6379" })).sentinels).toBeUndefined()
    expect(Option.isNone(yield* read({}))).toBe(true)
    for (const bad of ["127.0.0.1", "127.0.0.1:0", "host:port", ":26379", ","]) {
      const refused = yield* Effect.flip(read({ REDIS_SENTINELS: bad }))
      expect(String(refused)).toContain("REDIS_SENTINELS is a list of host:port")
    }
  }))
