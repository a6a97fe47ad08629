import type { User } from "./Model.js"

/** Who may see whom: oneself, one's own trainer, a trainer's assigned users; admins see everyone. */
export const canView = (actor: User, target: User): boolean =>
  actor.role === "admin" ||
  actor.id === target.id ||
  actor.assignedTrainerId === target.id ||
  (actor.role === "trainer" && target.assignedTrainerId === actor.id)

export const isAdmin = (actor: User): boolean => actor.role === "admin"
