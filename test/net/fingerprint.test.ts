import { X509Certificate } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { fingerprintOf, parseFingerprint } from '../../lib/net/fingerprint.js'
import { openNodeCertificate } from '../../lib/server/node-cert.js'

const HEX = '3f0a'.repeat(16)

t.test('fingerprints are read in every form people paste, and written in one', async (t) => {
  const canonical = `sha256:${HEX}`
  for (const form of [canonical, HEX, HEX.toUpperCase(), `SHA256:${HEX}`, HEX.toUpperCase().match(/../g)!.join(':'), `sha256 Fingerprint=${HEX.match(/../g)!.join(':')}`, `  ${canonical}\n`]) {
    t.equal(parseFingerprint(form), canonical, JSON.stringify(form))
  }
  for (const bad of ['', 'sha256:', HEX.slice(1), `${HEX}00`, `md5:${HEX}`, 'z'.repeat(64)]) t.throws(() => parseFingerprint(bad), { code: 'USAGE' }, JSON.stringify(bad))
})

t.test('the fingerprint of a certificate is the sha256 of its DER, as openssl prints it', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'deposito-fp-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const { cert, fingerprint } = await openNodeCertificate(dir, 'n')
  const x509 = new X509Certificate(cert)
  t.equal(fingerprintOf(x509), fingerprint)
  t.equal(fingerprintOf(x509.raw), fingerprint)
  t.equal(parseFingerprint(x509.fingerprint256), fingerprint, "Node's (openssl's) colon form names the same certificate")
  t.equal((await openNodeCertificate(dir, 'n')).fingerprint, fingerprint, 'kept across starts')
})
