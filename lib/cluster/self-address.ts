import { networkInterfaces } from 'node:os'
import { parseAddress } from '../net/address.js'

/**
 * Whether `advertised` (what a joining mirror says to dial it at) would reach this very node, listening on
 * `own`. A primary that took itself for a mirror would send itself `drop` when a count is lowered and delete its
 * only copy; the usual way in is a mirror on another machine left on `--host 127.0.0.1`, which advertises
 * 127.0.0.1:PORT — on the primary, the primary itself when the ports match.
 *
 * Same port, and: the same host; or both loopback/wildcard forms (a node on 0.0.0.0 answers on 127.0.0.1 too);
 * or, when we listen on a wildcard, one of this machine's interface addresses. A name other than `localhost` is
 * not resolved (a join must not wait on DNS); `--advertise` with a host name is the operator's word.
 */
export function isOwnAddress(advertised: string, own: { host: string; port: number }): boolean {
  let theirs
  try {
    theirs = parseAddress(advertised)
  } catch {
    return false
  }
  if (theirs.port !== own.port) return false
  const host = normalise(theirs.host)
  const mine = normalise(own.host)
  if (host === mine) return true
  const local = (h: string) => isLoopback(h) || isWildcard(h)
  if (local(mine) && local(host)) return true
  return isWildcard(mine) && interfaceAddresses().has(host)
}

const normalise = (h: string) => h.toLowerCase().replace(/^::ffff:(?=\d+\.)/, '')
const isLoopback = (h: string) => h === 'localhost' || h === '::1' || h.startsWith('127.')
const isWildcard = (h: string) => h === '0.0.0.0' || h === '::'

function interfaceAddresses(): Set<string> {
  const found = new Set<string>()
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) found.add(normalise(a.address))
  return found
}
