import { PeerAuth, loadSecret } from '../cluster/peer-auth.js'
import { PeerClient } from '../cluster/peer-client.js'
import { DepositoError } from '../protocol/errors.js'
import { peerTransport } from '../net/tls.js'

/**
 * `bin/server remove-mirror <node-id|address> --primary HOST:PORT`: an operator telling a primary to forget a
 * dead mirror for good (a signed `leave`, so it needs the cluster secret). The primary copies that mirror's files
 * again before it answers, which may take a while on a large cluster: the wait is bounded by a long idle timeout,
 * not a short one.
 */
export interface RemoveMirrorFlags {
  primary: string
  secretFile?: string
  tls?: boolean
}

const LEAVE_IDLE_MS = 30 * 60_000

export async function removeMirrorCommand(node: string, flags: RemoveMirrorFlags, out: NodeJS.WritableStream = process.stdout): Promise<void> {
  const secret = await loadSecret(flags.secretFile)
  if (!secret) throw new DepositoError('USAGE', 'remove-mirror needs the cluster secret (--secret-file or DEPOSITO_SECRET)')
  const transport = peerTransport(secret, flags.tls === true)
  const peers = new PeerClient(new PeerAuth(secret), { connectTimeoutMs: 5_000, idleTimeoutMs: LEAVE_IDLE_MS, transport })
  const reply = await peers.request(flags.primary, { op: 'leave', no: node })
  out.write(`removed mirror ${reply.no} from the cluster of ${flags.primary}; ${reply.arquivos} files copied to other mirrors\n`)
}
