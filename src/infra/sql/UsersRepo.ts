import { SqlClient, SqlSchema } from "@effect/sql"
import { Effect, Layer, Schema } from "effect"
import { type Page, type UserQuery, UsersRepo } from "../../domain/ports/UsersRepo.js"
import { EmailTaken } from "../../domain/users/Errors.js"
import { Email, User, UserId } from "../../domain/users/Model.js"
import { isUniqueViolation } from "./Errors.js"

const Count = Schema.Struct({ total: Schema.Number })

const Patch = Schema.partial(User.update.pipe(Schema.pick("firstName", "lastName", "avatar", "isActive", "passwordHash", "tokensValidAfter")))

export const layer = Layer.effect(
  UsersRepo,
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient

    const findById = SqlSchema.findOne({
      Request: UserId,
      Result: User,
      execute: (id) => sql`SELECT * FROM users WHERE id = ${id}`
    })

    const findByEmail = SqlSchema.findOne({
      Request: Email,
      Result: User,
      execute: (email) => sql`SELECT * FROM users WHERE email = ${email}`
    })

    const insert = SqlSchema.single({
      Request: User.insert,
      Result: User,
      execute: (user) => sql`INSERT INTO users ${sql.insert(user)} RETURNING *`
    })

    const listActiveTrainers = SqlSchema.findAll({
      Request: Schema.Void,
      Result: User,
      execute: () =>
        sql`SELECT * FROM users WHERE role = 'trainer' AND is_active ORDER BY last_name, first_name, id`
    })

    const list = (query: UserQuery) => {
      const filters = [
        ...(query.role === undefined ? [] : [sql`role = ${query.role}`]),
        ...(query.assignedTrainerId === undefined ? [] : [sql`assigned_trainer_id = ${query.assignedTrainerId}`])
      ]
      const where = sql.and(filters)
      return Effect.all({
        items: SqlSchema.findAll({
          Request: Schema.Void,
          Result: User,
          execute: () =>
            sql`SELECT * FROM users WHERE ${where} ORDER BY created_at, id LIMIT ${query.limit} OFFSET ${query.offset}`
        })(undefined),
        total: SqlSchema.single({
          Request: Schema.Void,
          Result: Count,
          execute: () => sql`SELECT count(*)::int AS total FROM users WHERE ${where}`
        })(undefined).pipe(Effect.map((row) => row.total))
      }) satisfies Effect.Effect<Page<User>, unknown>
    }

    const update = SqlSchema.findOne({
      Request: Schema.Struct({ id: UserId, patch: Patch }),
      Result: User,
      execute: ({ id, patch }) =>
        sql`UPDATE users SET ${sql.update({ ...patch, updatedAt: new Date() })} WHERE id = ${id} RETURNING *`
    })

    const assignTrainer = SqlSchema.findOne({
      Request: Schema.Struct({ id: UserId, trainerId: UserId }),
      Result: User,
      execute: ({ id, trainerId }) =>
        sql`UPDATE users SET assigned_trainer_id = ${trainerId}, updated_at = now() WHERE id = ${id} RETURNING *`
    })

    const adminExists = sql<{ exists: boolean }>`SELECT EXISTS (SELECT 1 FROM users WHERE role = 'admin') AS exists`
      .pipe(Effect.map((rows) => rows[0]?.exists === true))

    return UsersRepo.of({
      findById: (id) => Effect.orDie(findById(id)),
      findByEmail: (email) => findByEmail(email).pipe(Effect.orDie, Effect.withSpan("UsersRepo.findByEmail")),
      insert: (user) =>
        insert({
          ...user,
          isActive: true,
          assignedTrainerId: null,
          tokensValidAfter: null,
          createdAt: undefined,
          updatedAt: undefined
        }).pipe(
          Effect.catchAll((error) =>
            isUniqueViolation("users_email_key")(error) ? Effect.fail(new EmailTaken()) : Effect.die(error)
          ),
          Effect.withSpan("UsersRepo.insert")
        ),
      list: (query) => list(query).pipe(Effect.orDie, Effect.withSpan("UsersRepo.list")),
      listActiveTrainers: listActiveTrainers(undefined).pipe(Effect.orDie, Effect.withSpan("UsersRepo.listActiveTrainers")),
      update: (id, patch) => update({ id, patch }).pipe(Effect.orDie, Effect.withSpan("UsersRepo.update")),
      assignTrainer: (id, trainerId) =>
        assignTrainer({ id, trainerId }).pipe(Effect.orDie, Effect.withSpan("UsersRepo.assignTrainer")),
      adminExists: adminExists.pipe(Effect.orDie, Effect.withSpan("UsersRepo.adminExists"))
    })
  })
)
