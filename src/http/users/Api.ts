import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as OpenApi from "@effect/platform/OpenApi"
import { Schema } from "effect"
import { Forbidden } from "../../domain/Errors.js"
import { EmailTaken, InvalidAssignment, UserNotFound, WrongCurrentPassword } from "../../domain/users/Errors.js"
import { AvatarUrl, Email, Name, Password, Role, UserId, UserJson } from "../../domain/users/Model.js"
import { optional, Page, pageParams, strict, StrictStruct } from "../Schemas.js"
import { Authentication } from "../Security.js"


export const ListUsersParams = Schema.Struct({
  role: optional(Role),
  ...pageParams
}).annotations(strict)

export const UserPage = Page("UserPage", UserJson)

export class CreateUserPayload extends Schema.Class<CreateUserPayload>("CreateUserPayload")(StrictStruct({
  email: Email,
  password: Password,
  firstName: Name,
  lastName: Name,
  role: Role,
  avatar: optional(Schema.NullOr(AvatarUrl))
})) {}

export class UpdateUserPayload extends Schema.Class<UpdateUserPayload>("UpdateUserPayload")(StrictStruct({
  firstName: optional(Name),
  lastName: optional(Name),
  avatar: optional(Schema.NullOr(AvatarUrl)),
  isActive: optional(Schema.Boolean),
  password: optional(Password),
  currentPassword: optional(Schema.Redacted(Schema.String.pipe(Schema.maxLength(256))))
})) {}

const id = HttpApiSchema.param("id", UserId)
const trainerId = HttpApiSchema.param("trainerId", UserId)

export class UsersApi extends HttpApiGroup.make("users")
  .add(
    HttpApiEndpoint.get("me", "/me")
      .addSuccess(UserJson)
      .annotate(OpenApi.Summary, "The signed-in user")
  )
  .add(
    HttpApiEndpoint.get("list", "/")
      .setUrlParams(ListUsersParams)
      .addSuccess(UserPage)
      .addError(Forbidden)
      .annotate(OpenApi.Summary, "List users: admins see all (filter by role), trainers their assigned users")
  )
  .add(
    HttpApiEndpoint.get("trainers", "/trainers")
      .addSuccess(Schema.Array(UserJson))
      .annotate(OpenApi.Summary, "List active trainers")
  )
  .add(
    HttpApiEndpoint.get("get")`/${id}`
      .addSuccess(UserJson)
      .addError(UserNotFound)
      .annotate(OpenApi.Summary, "One user: oneself, one's trainer, a trainer's assigned users; admins anyone")
  )
  .add(
    HttpApiEndpoint.post("create", "/")
      .setPayload(CreateUserPayload)
      .addSuccess(UserJson, { status: 201 })
      .addError(Forbidden)
      .addError(EmailTaken)
      .annotate(OpenApi.Summary, "Create a user of any role (admin)")
  )
  .add(
    HttpApiEndpoint.patch("update")`/${id}`
      .setPayload(UpdateUserPayload)
      .addSuccess(UserJson)
      .addError(Forbidden)
      .addError(UserNotFound)
      .addError(WrongCurrentPassword)
      .annotate(
        OpenApi.Summary,
        "Update a user: admins names, avatar and isActive; owners names, avatar and password (with currentPassword)"
      )
  )
  .add(
    HttpApiEndpoint.post("assignTrainer")`/${id}/assign-trainer/${trainerId}`
      .addSuccess(UserJson)
      .addError(Forbidden)
      .addError(UserNotFound)
      .addError(InvalidAssignment)
      .annotate(OpenApi.Summary, "Assign a trainer to a user (admin)")
  )
  .middleware(Authentication)
  .prefix("/users")
  .annotate(OpenApi.Title, "Users")
{}
