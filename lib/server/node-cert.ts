import { X509Certificate } from 'node:crypto'
import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { generate } from 'selfsigned'
import { fingerprintOf } from '../net/fingerprint.js'
import { DepositoError } from '../protocol/errors.js'
import { writeFileDurable } from '../store/durable-fs.js'

/**
 * A node's TLS identity: an EC P-256 key and a self-signed certificate in `DATA/tls/`, made at the node's first
 * start and kept for ever, like its node id. No CA vouches for it; clients pin its fingerprint instead
 * (lib/client/known-servers.ts), so it must not change while the data dir lives. It is made while the data
 * dir's lock is held (the store is open), so two starts never race to make two.
 */
export interface NodeCertificate {
  key: string
  cert: string
  /** `sha256:<hex>` of the certificate (lib/net/fingerprint.ts). */
  fingerprint: string
}

const HUNDRED_YEARS_MS = 100 * 365.25 * 86_400_000

function paths(dataDir: string): { dir: string; key: string; cert: string } {
  const dir = join(dataDir, 'tls')
  return { dir, key: join(dir, 'key.pem'), cert: join(dir, 'cert.pem') }
}

async function readIfExists(path: string): Promise<string | undefined> {
  return readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined
    throw err
  })
}

export async function openNodeCertificate(dataDir: string, nodeId: string): Promise<NodeCertificate> {
  const where = paths(dataDir)
  const [key, cert] = await Promise.all([readIfExists(where.key), readIfExists(where.cert)])
  if (key !== undefined && cert !== undefined) return { key, cert, fingerprint: fingerprintOf(new X509Certificate(cert)) }
  // The key is written first and the certificate last, so a start cut between the two makes both again: no
  // client can have pinned a certificate that was never complete.
  const made = await generate([{ name: 'commonName', value: `deposito-node ${nodeId}` }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notAfterDate: new Date(Date.now() + HUNDRED_YEARS_MS),
  })
  await mkdir(where.dir, { recursive: true, mode: 0o700 })
  await writeFileDurable(where.key, made.private, where.dir, 0o600)
  await writeFileDurable(where.cert, made.cert, where.dir, 0o644)
  return { key: made.private, cert: made.cert, fingerprint: fingerprintOf(new X509Certificate(made.cert)) }
}

/** `bin/server fingerprint --data DIR`: read only, so it is safe beside a running node. */
export async function readNodeFingerprint(dataDir: string): Promise<string> {
  const cert = await readIfExists(paths(dataDir).cert)
  if (cert === undefined) throw new DepositoError('NOT_FOUND', `no node certificate in ${paths(dataDir).dir}: a node makes it at its first start`)
  return fingerprintOf(new X509Certificate(cert))
}
