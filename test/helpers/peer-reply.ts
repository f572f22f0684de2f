import { PeerAuth } from '../../lib/cluster/peer-auth.js'
import { decodeFields } from '../../lib/protocol/fields.js'

/**
 * For a fake peer answering a real PeerClient: checks the request line as a node would and seals the reply's
 * first line to its nonce (anything after that line, a body, is left as it is).
 */
export function sealedReply(auth: PeerAuth, request: string, reply: string): string {
  const line = request.slice(0, request.indexOf('\n'))
  const seal = auth.bind(auth.verify(line, decodeFields(line)))
  const nl = reply.indexOf('\n') + 1
  return seal.seal(reply.slice(0, nl)) + reply.slice(nl)
}
