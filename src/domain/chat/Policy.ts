import type { User } from "../users/Model.js"
import { isParticipant, type Participants } from "./Model.js"

/** Participants use a conversation; admins may read it (audited); everyone else must not learn it exists. */
export type Access = "participant" | "admin" | "none"

export const accessOf = (actor: User, participants: Participants): Access =>
  isParticipant(participants, actor.id) ? "participant" : actor.role === "admin" ? "admin" : "none"

/** The pair a user and a trainer form when they are assigned to each other. */
export const assignedPair = (user: User, trainer: User) =>
  user.role === "user" && trainer.role === "trainer" && user.assignedTrainerId === trainer.id
    ? { user, trainer }
    : undefined
