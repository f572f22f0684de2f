import { DepositoError } from '../protocol/errors.js'
import { DEFAULT_PORT } from '../protocol/values.js'

export interface ServerAddress {
  host: string
  port: number
}

export const DEFAULT_SERVER = `127.0.0.1:${DEFAULT_PORT}`

/** Parses `HOST:PORT`, `HOST` (default port), or `[v6]:PORT`. */
export function parseAddress(text: string): ServerAddress {
  const match = /^(?:\[([^\]]+)\]|([^:]+))(?::(\d{1,5}))?$/.exec(text.trim())
  const port = match?.[3] === undefined ? DEFAULT_PORT : Number(match[3])
  if (!match || port < 1 || port > 65535) {
    throw new DepositoError('USAGE', `bad server address ${JSON.stringify(text)}; expected HOST:PORT, e.g. 127.0.0.1:${DEFAULT_PORT}`)
  }
  return { host: match[1] ?? match[2]!, port }
}

/** `--server` may name several nodes, comma-separated: the primary first, then mirrors to fall back on. */
export function parseAddressList(text: string): ServerAddress[] {
  const parts = text.split(',').map((p) => p.trim()).filter((p) => p.length > 0)
  if (parts.length === 0) throw new DepositoError('USAGE', 'no server address given')
  return parts.map(parseAddress)
}

export function formatAddress({ host, port }: ServerAddress): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
}
