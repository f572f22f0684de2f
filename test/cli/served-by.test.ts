import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { DepositoClient } from '../../lib/client/client.js'
import { listCommand, retrieveCommand, statusCommand } from '../../lib/cli/client-commands.js'
import { parseAddress } from '../../lib/net/address.js'
import { NODE_A, NODE_B, afterRequest, fakeNode } from '../helpers/fake-node.js'
import { output } from '../helpers/output.js'

// A read served by a mirror says so: one line on stderr for people, `servedBy` in --json (on every read result,
// the primary's too); stdout keeps only the result, and with `retrieve -o -` only the file's bytes.
const BYTES = Buffer.from('copy held by the mirror\n')
const stored = `nome_arquivo:f|tamanho_arquivo:${BYTES.length}|hash_arquivo:${createHash('sha256').update(BYTES).digest('hex')}|qtd_replicas:1|data:2024-01-01T00:00:00.000Z`

async function node(t: Test, who: string) {
  return fakeNode(t, {
    node: who,
    reply: (header, s) => {
      const op = /^op:([a-z]+)/.exec(header)![1]
      const reply =
        op === 'list' ? `status:ok|quantidade:1\n${stored}\n` : op === 'status' ? 'status:ok|nos:1|sub_replicados:0\nendereco:x:1|papel:primario|estado:up\n' : `status:ok|${stored}\n${BYTES}`
      afterRequest(reply)(header, s)
    },
  })
}

async function mirrorBehindFrozenPrimary(t: Test) {
  const frozen = await fakeNode(t, { node: null })
  const mirror = await node(t, `no:${NODE_B}|papel:espelho|cluster:${NODE_A}|primario:${frozen.address}`)
  const client = new DepositoClient({ server: [frozen, mirror].map((n) => parseAddress(n.address)), responseTimeoutMs: 1_500, id: '0c1f6c8e-3f1e-4d5b-9b5e-2f8a7c6d5e4f' })
  const note = `deposito: served by mirror ${mirror.address} (node 2b2b2b2b); the primary at ${frozen.address} did not answer\n`
  return { client, mirror, note }
}

t.test('list from a mirror: the note on stderr; in --json each entry carries servedBy, and no note', async (t) => {
  const { client, mirror, note } = await mirrorBehindFrozenPrimary(t)
  const human = output()
  await listCommand(client, human.out)
  t.match(human.stdout.text, /^NAME\s+SIZE/)
  t.equal(human.stderr.text, note)
  const json = output({ json: true })
  await listCommand(client, json.out)
  t.match(JSON.parse(json.stdout.text), [{ name: 'f', servedBy: { address: mirror.address, node: NODE_B, role: 'mirror' } }])
  t.equal(json.stderr.text, '')
})

t.test('retrieve -o - from a mirror: stdout holds the bytes alone, the note goes to stderr', async (t) => {
  const { client, mirror, note } = await mirrorBehindFrozenPrimary(t)
  const piped = output()
  await retrieveCommand(client, piped.out, 'f', { output: '-' })
  t.equal(piped.stdout.text, BYTES.toString())
  t.equal(piped.stderr.text, note)
  const dir = t.testdir()
  const json = output({ json: true })
  await retrieveCommand(client, json.out, 'f', { output: join(dir, 'f') })
  t.match(JSON.parse(json.stdout.text), { name: 'f', path: join(dir, 'f'), servedBy: { address: mirror.address, role: 'mirror' } })
  t.equal(await readFile(join(dir, 'f'), 'utf8'), BYTES.toString())
})

t.test('status from the primary: servedBy names it, and nothing is said on stderr', async (t) => {
  const primary = await node(t, `no:${NODE_A}|papel:primario|cluster:${NODE_A}`)
  const client = new DepositoClient({ server: parseAddress(primary.address), id: '0c1f6c8e-3f1e-4d5b-9b5e-2f8a7c6d5e4f' })
  const json = output({ json: true })
  await statusCommand(client, json.out)
  t.match(JSON.parse(json.stdout.text), { underReplicated: 0, servedBy: { address: primary.address, node: NODE_A, role: 'primary' } })
  const human = output()
  await statusCommand(client, human.out)
  t.equal(human.stderr.text, '')
})
