import { BlockList, isIP } from "node:net"

/**
 * Addresses a server must not be made to call on a client's word: loopback, private, link-local (cloud
 * metadata), carrier-grade NAT, unique-local, multicast and reserved ranges. A Web Push endpoint comes from
 * the client; without this, registering `https://10.0.0.5/…` would make the server post to the internal network.
 */
const blocked = (() => {
  const list = new BlockList()
  for (
    const [net, prefix] of [
      ["0.0.0.0", 8], ["10.0.0.0", 8], ["100.64.0.0", 10], ["127.0.0.0", 8], ["169.254.0.0", 16],
      ["172.16.0.0", 12], ["192.0.0.0", 24], ["192.0.2.0", 24], ["192.168.0.0", 16], ["198.18.0.0", 15],
      ["198.51.100.0", 24], ["203.0.113.0", 24], ["224.0.0.0", 4], ["240.0.0.0", 4]
    ] as const
  ) list.addSubnet(net, prefix, "ipv4")
  for (
    const [net, prefix] of [
      ["::", 128], ["::1", 128], ["64:ff9b::", 96], ["100::", 64], ["2001:db8::", 32],
      ["fc00::", 7], ["fe80::", 10], ["ff00::", 8]
    ] as const
  ) list.addSubnet(net, prefix, "ipv6")
  // (No ::ffff:0:0/96 rule: BlockList judges every IPv4 address against it. Mapped addresses are unwrapped below.)
  return list
})()

/** Whether `address` (an IP literal) is one a server must not call; IPv4-mapped IPv6 is judged as its IPv4. */
export const isPrivateAddress = (address: string): boolean => {
  const bare = address.replace(/^\[|\]$/g, "")
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare)?.[1]
  if (mapped !== undefined) return blocked.check(mapped, "ipv4")
  const family = isIP(bare)
  if (family === 0) return false
  return blocked.check(bare, family === 4 ? "ipv4" : "ipv6")
}

/** Whether a URL's host is named as a private address, or as `localhost` (a name that always is one). */
export const isPrivateHost = (hostname: string): boolean => {
  const host = hostname.replace(/^\[|\]$/g, "").toLowerCase()
  return host === "localhost" || host.endsWith(".localhost") || isPrivateAddress(host)
}
