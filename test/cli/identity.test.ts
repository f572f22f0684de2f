import { randomUUID } from 'node:crypto'
import { readdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { EXIT, ONE_LINE, UUID_V4, exists, randomBytesSeeded, runClient, savedId, startServerProcess } from '../helpers/bins.js'

/**
 * Ids through the command line: each DEPOSITO_HOME gets its own id from the server, files are private to an id,
 * and an id can be carried to another machine (another home) with --id or DEPOSITO_ID.
 */
interface ListEntry {
  name: string
}

t.test('ids: one per home, files private to their id, and portable with --id / DEPOSITO_ID', async (t) => {
  const dir = t.testdir()
  const data = join(dir, 'data')
  const server = await startServerProcess(t, { dataDir: data })
  const { port } = server
  const homeA = join(dir, 'home-a')
  const homeB = join(dir, 'home-b')
  const src = join(dir, 'x')
  const bytes = randomBytesSeeded(10_000, 'identity')
  await writeFile(src, bytes)

  const names = async (home: string, extra: string[] = [], env?: Record<string, string>) => {
    const r = await runClient(['list', '--json', ...extra], { home, port, env })
    t.equal(r.code, 0, `list exits 0 (stderr: ${r.stderr})`)
    return (JSON.parse(r.stdout.toString()) as ListEntry[]).map((e) => e.name)
  }

  await t.test('two homes, two ids', async (t) => {
    const a = await runClient(['id'], { home: homeA, port })
    const b = await runClient(['id'], { home: homeB, port })
    t.equal(a.code, 0, a.stderr)
    t.equal(b.code, 0, b.stderr)
    const idA = a.stdout.toString()
    const idB = b.stdout.toString()
    t.match(idA, /\n$/, 'id ends with a newline')
    t.match(idA.trim(), UUID_V4, 'id prints a UUID v4')
    t.match(idB.trim(), UUID_V4)
    t.not(idA, idB, 'each home was issued its own id')
    t.equal(await savedId(homeA, port), idA.trim(), 'the id printed is the one saved')
    const again = await runClient(['id'], { home: homeA, port })
    t.equal(again.stdout.toString(), idA, 'asking again gives the same id')
    t.same((await readdir(join(data, 'clients'))).sort(), [idA.trim(), idB.trim()].sort(), 'the server issued exactly two ids')
  })

  await t.test('files are private to their id', async (t) => {
    const dep = await runClient(['deposit', src], { home: homeA, port })
    t.equal(dep.code, 0, dep.stderr)
    t.same(await names(homeA), ['x'])
    t.same(await names(homeB), [], "B's list does not show A's file")
    const ret = await runClient(['retrieve', 'x', '-o', join(dir, 'b-got-x')], { home: homeB, port })
    t.equal(ret.code, EXIT.NOT_FOUND, "B's retrieve x is NOT_FOUND")
    t.match(ret.stderr, /^deposito: NOT_FOUND: /)
    t.notOk(await exists(join(dir, 'b-got-x')), 'and nothing was written')
  })

  await t.test('ids.json is private to the user', async (t) => {
    t.equal((await stat(join(homeA, 'ids.json'))).mode & 0o777, 0o600, 'ids.json is 0600')
    t.equal((await stat(homeA)).mode & 0o777, 0o700, 'DEPOSITO_HOME is created 0700')
  })

  await t.test('the id works from another home', async (t) => {
    const idA = (await savedId(homeA, port))!
    const before = (await readdir(join(data, 'clients'))).length
    const homeC = join(dir, 'home-c')
    t.same(await names(homeC, ['--id', idA]), ['x'], "--id A's id from a fresh home sees A's files")
    const ret = await runClient(['retrieve', 'x', '-o', '-', '--id', idA], { home: homeC, port })
    t.equal(ret.code, 0, ret.stderr)
    t.ok(ret.stdout.equals(bytes), 'and can retrieve them')
    const homeD = join(dir, 'home-d')
    t.same(await names(homeD, [], { DEPOSITO_ID: idA }), ['x'], 'DEPOSITO_ID does the same')
    const upper = await names(join(dir, 'home-e'), ['--id', idA.toUpperCase()])
    t.same(upper, ['x'], 'an id is not case-sensitive')
    t.equal((await readdir(join(data, 'clients'))).length, before, 'using an id did not issue a new one')
  })

  await t.test('ids the server never issued', async (t) => {
    let unissued = randomUUID()
    while ((await readdir(join(data, 'clients'))).includes(unissued)) unissued = randomUUID()
    const viaFlag = await runClient(['list', '--id', unissued], { home: join(dir, 'home-f'), port })
    t.equal(viaFlag.code, EXIT.UNKNOWN_CLIENT, '--id with a valid but unissued UUID is UNKNOWN_CLIENT')
    t.match(viaFlag.stderr, ONE_LINE)
    t.match(viaFlag.stderr, /^deposito: UNKNOWN_CLIENT: .*--id/)
    const viaEnv = await runClient(['id'], { home: join(dir, 'home-g'), port, env: { DEPOSITO_ID: unissued } })
    t.equal(viaEnv.code, EXIT.UNKNOWN_CLIENT, 'the same through DEPOSITO_ID')
    t.equal(viaEnv.stdout.length, 0)

    for (const bad of ['not-a-uuid', '11111111-1111-1111-8111-111111111111']) {
      const r = await runClient(['list', '--id', bad], { home: join(dir, 'home-h'), port })
      t.equal(r.code, EXIT.USAGE, `--id ${bad} is a usage error`)
      t.match(r.stderr, ONE_LINE)
      t.match(r.stderr, /^deposito: USAGE: .*UUID/)
    }
    t.notOk(await exists(join(dir, 'home-h')), 'a refused id leaves no home behind')
  })
})

t.test('--help steers a shared machine to DEPOSITO_ID rather than --id, which ps shows', async (t) => {
  const help = (await runClient(['--help'], { home: join(t.testdir(), 'home') })).stdout.toString()
  t.match(help, /--id <uuid>[^]*use\s+DEPOSITO_ID\s+instead:\s+a\s+command\s+line\s+shows\s+in\s+ps/, 'on the option itself')
  t.match(help, /pass it as DEPOSITO_ID or let the saved one be found,\s+never as --id/, 'and in the notes')
})
