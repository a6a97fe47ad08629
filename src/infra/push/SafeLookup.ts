import * as Dns from "node:dns"
import type { LookupFunction } from "node:net"
import { isPrivateAddress } from "../../domain/push/Endpoints.js"

export const PrivateAddressRefused = "ERR_PRIVATE_ADDRESS"

/**
 * `dns.lookup` that refuses names resolving to a private address (a public name pointed at the internal network
 * after it was registered): given to the agents that call client-supplied URLs.
 */
export const safeLookup: LookupFunction = (hostname, options, callback) => {
  Dns.lookup(hostname, { ...options, all: true }, (error, addresses) => {
    if (error) return callback(error, "", 4)
    const list = addresses as unknown as ReadonlyArray<Dns.LookupAddress>
    const refused = list.find((a) => isPrivateAddress(a.address))
    if (refused !== undefined || list.length === 0) {
      const failure = Object.assign(new Error(`${hostname} resolves to an address that is not public`), {
        code: PrivateAddressRefused
      }) as NodeJS.ErrnoException
      return callback(failure, "", 4)
    }
    if ((options as Dns.LookupOptions).all === true) return (callback as any)(null, list)
    callback(null, list[0]!.address, list[0]!.family)
  })
}
