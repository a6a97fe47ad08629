import { createHmac, randomBytes } from "node:crypto"

/** A new signing secret as Standard Webhooks write them: `whsec_` and 32 random bytes in base64. */
export const newSecret = () => `whsec_${randomBytes(32).toString("base64")}`

/**
 * The headers of a signed delivery (Standard Webhooks): `webhook-signature` is `v1,` and the base64
 * HMAC-SHA256, keyed with the secret's decoded bytes, of `id.timestamp.body`.
 */
export const signedHeaders = (secret: string, id: string, timestamp: number, body: string) => {
  const key = Buffer.from(secret.startsWith("whsec_") ? secret.slice(6) : secret, "base64")
  const signature = createHmac("sha256", key).update(`${id}.${timestamp}.${body}`).digest("base64")
  return {
    "webhook-id": id,
    "webhook-timestamp": String(timestamp),
    "webhook-signature": `v1,${signature}`
  }
}
