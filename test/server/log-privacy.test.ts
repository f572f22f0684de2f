import { createHash, randomUUID } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { clientTag } from '../../lib/protocol/client-tag.js'
import { createLogger, hideClientIds, logIssuedId } from '../../lib/server/logger.js'

/**
 * No client id in a log line (lib/server/logger.ts, lib/protocol/client-tag.ts). Under `npm test` the audit dir
 * is the suite's (its after-check reads what this writes); run alone, the test makes its own.
 */
process.env.DEPOSITO_LOG_AUDIT_DIR ??= t.testdir()
const dir = process.env.DEPOSITO_LOG_AUDIT_DIR

t.test('a tag is the documented one-way digest, 12 hex digits', async (t) => {
  const id = '0c1f6c8e-3f1e-4d5b-9b5e-2f8a7c6d5e4f'
  t.equal(clientTag(id), createHash('sha256').update(`deposito client tag\n${id}`).digest('hex').slice(0, 12))
  t.match(clientTag(id), /^[0-9a-f]{12}$/)
  t.not(clientTag(id), clientTag(randomUUID()), 'ids are told apart')
})

t.test('ids inside text are replaced by their tag; other uuids (node ids) stay', async (t) => {
  const id = randomUUID()
  const node = randomUUID()
  const line = `{"err":"ENOENT: open '/data/clients/${id}/files/x.json'","msg":"id_cliente ${id.toUpperCase()} was not issued","node":"${node}"}`
  const hidden = hideClientIds(line)
  t.notMatch(hidden.toLowerCase(), id, 'the id is gone')
  t.match(hidden, `clients/<tag ${clientTag(id)}>/files`, 'a path keeps its shape')
  t.match(hidden, `id_cliente <tag ${clientTag(id)}> was not issued`, 'a message too')
  t.match(hidden, node, 'a node id is not a secret and stays')
})

t.test('under the audit, every line of a silent logger is kept, with no id, and issued ids are listed', async (t) => {
  const log = createLogger('silent')
  const id = randomUUID()
  logIssuedId(log, id)
  log.debug({ err: new Error(`EACCES: /d/clients/${id}/blobs/ab`) }, 'a debug line')
  const lines = (await readFile(join(dir, `log-${process.pid}.jsonl`), 'utf8')).split('\n').filter(Boolean)
  const issued = lines.find((l) => l.includes('issued a new client id'))
  t.match(JSON.parse(issued!), { client: clientTag(id) }, 'the issued-id line carries the tag')
  t.ok(lines.some((l) => l.includes('a debug line')), 'a debug line of a silent logger reaches the audit')
  t.notOk(lines.some((l) => l.includes(id)), 'no line holds the id')
  const ids = (await readFile(join(dir, `ids-${process.pid}.txt`), 'utf8')).split('\n')
  t.ok(ids.includes(id), 'the id is on the audit list')
})

t.test('the audit keeps every level whatever the logger shows; without the audit, only the asked level', async (t) => {
  const marker = randomUUID()
  const quiet = createLogger('fatal')
  quiet.debug({ marker }, 'below what this logger shows')
  const lines = await readFile(join(dir, `log-${process.pid}.jsonl`), 'utf8')
  t.match(lines, marker, 'still audited')
  delete process.env.DEPOSITO_LOG_AUDIT_DIR
  t.teardown(() => void (process.env.DEPOSITO_LOG_AUDIT_DIR = dir))
  const plain = createLogger('warn')
  t.equal(plain.level, 'warn', 'no audit: the logger keeps its own level')
  t.notOk(plain.isLevelEnabled('info'), 'and writes nothing below it')
})
