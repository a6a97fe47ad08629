import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { Effect } from "effect"
import { Users } from "../../domain/users/Users.js"
import { Api } from "../Api.js"
import { CurrentUser } from "../Security.js"

export const UsersLive = HttpApiBuilder.group(Api, "users", (handlers) =>
  Effect.gen(function*() {
    const users = yield* Users

    return handlers
      .handle("me", () => CurrentUser)
      .handle("list", ({ urlParams }) =>
        Effect.flatMap(CurrentUser, (actor) =>
          Effect.map(users.list(actor, urlParams), (page) => ({ ...page, limit: urlParams.limit, offset: urlParams.offset }))))
      .handle("trainers", () => users.listTrainers)
      .handle("get", ({ path }) => Effect.flatMap(CurrentUser, (actor) => users.get(actor, path.id)))
      .handle("create", ({ payload }) => Effect.flatMap(CurrentUser, (actor) => users.create(actor, payload)))
      .handle("update", ({ path, payload }) =>
        Effect.flatMap(CurrentUser, (actor) => users.update(actor, path.id, payload)))
      .handle("assignTrainer", ({ path }) =>
        Effect.flatMap(CurrentUser, (actor) =>
          Effect.map(users.assignTrainer(actor, path.id, path.trainerId), ({ user }) => user)))
  }))
