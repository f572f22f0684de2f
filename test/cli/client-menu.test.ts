import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import t, { type Test } from 'tap'
import { DepositoClient } from '../../lib/client/client.js'
import { IdentityFile } from '../../lib/client/identity.js'
import { clientMenu, localPath } from '../../lib/cli/client-menu.js'
import type { DepositoServer } from '../../lib/server/server.js'
import { startServer } from '../helpers/server.js'
import { KEY, Screen, fakeTty, keyboard, type Keyboard } from '../helpers/terminal.js'

/**
 * The seed's menu, driven in-process: keys into a stream, the screen read back, the server's store and the
 * local files checked. (test/cli/menus-pty.test.ts runs the real bins on a pseudo-terminal.)
 */
const SECRET = Buffer.from('a test cluster secret, long enough')
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}/
const SHOWN_ID = new RegExp(`Your client id is (${UUID.source})`)

interface Session extends Keyboard {
  errors: Screen
  home: string
  done: Promise<number>
  /** Picks an entry of the main menu by its number. */
  choose(n: number): Promise<string>
}

function session(t: Test, port: number, options: { id?: string; home?: string } = {}): Session {
  const home = options.home ?? join(t.testdir(), 'home')
  const keys = keyboard()
  const errors = new Screen()
  const done = clientMenu(
    { input: keys.input, output: fakeTty(keys.screen), stderr: fakeTty(errors), progress: true },
    { server: { host: '127.0.0.1', port }, id: options.id, identity: new IdentityFile(home) },
  )
  return { ...keys, errors, home, done, choose: (n) => keys.answer(/What would you like to do\?/, `${n}${KEY.enter}`) }
}

/** Host, port (both defaults) and a blank id: the connection every test starts with. */
async function connect(s: Session): Promise<string> {
  await s.answer(/Server host/, KEY.enter)
  await s.answer(/Server port/, KEY.enter)
  await s.answer(/Client id to reconnect with/, KEY.enter)
  return SHOWN_ID.exec(await s.screen.waitFor(SHOWN_ID))![1]!
}

/** Nodes under `root` (t.testdir() empties its dir on every call: one call per test). */
async function primaryWithMirror(t: Test, root: string): Promise<DepositoServer> {
  const common = { secret: SECRET, heartbeatIntervalMs: 60_000, repairIntervalMs: 60_000 }
  const primary = await startServer(t, { ...common, dataDir: join(root, 'primary') })
  await startServer(t, { ...common, dataDir: join(root, 'mirror'), join: `127.0.0.1:${primary.address.port}` })
  // The join is announced by the mirror's start; bounded wait for the primary to have taken it in.
  for (let i = 0; i < 500 && primary.mirrors().filter((m) => m.up).length === 0; i++) await new Promise((r) => setTimeout(r, 10))
  t.equal(primary.mirrors().filter((m) => m.up).length, 1, 'the mirror has joined')
  return primary
}

t.test('deposit, list, retrieve, change replicas, delete, status, quit', async (t) => {
  const root = t.testdir()
  const primary = await primaryWithMirror(t, root)
  const work = join(root, 'work')
  await mkdir(work, { recursive: true })
  const file = join(work, 'notes.txt')
  await writeFile(file, 'hello from the menu\n')
  const s = session(t, primary.address.port, { home: join(work, 'home') })
  const id = await connect(s)
  t.match(id, UUID, 'the id to keep is shown')
  t.equal(JSON.parse(await readFile(join(s.home, 'ids.json'), 'utf8'))[`cluster:${primary.identity.id}`], id, 'and saved for next time, under the cluster')

  await s.choose(1)
  await s.answer(/File to deposit/, `${join(work, 'nope.txt')}${KEY.enter}`)
  await s.screen.waitFor(/nope\.txt is not a file that can be read here/)
  for (let i = 0; i < 'nope.txt'.length; i++) s.input.write('\x7f')
  s.input.write(`notes.txt${KEY.enter}`)
  await s.answer(/Replicas besides the server \(1 mirror available\)/, `1${KEY.enter}`)
  await s.screen.waitFor(/deposited notes\.txt \(20 B, sha256 [0-9a-f]{16}…, 2 copies\)/)
  t.match(s.errors.text, /deposit/, 'the deposit drew its progress bar on stderr')
  t.notMatch(s.errors.text, /deposito: /, 'and reported no error')
  t.ok(primary.store.stat(id, 'notes.txt'), 'the server holds the file')

  await s.choose(3)
  const table = await s.screen.waitFor(/NAME\s+SIZE\s+REPLICAS\s+STORED\s+SHA256\n[^\n]+\n/)
  t.match(table, /notes\.txt\s+20 B\s+1\s/, 'list shows it, with its replica count')

  await s.choose(2)
  await s.answer(/File to retrieve/, KEY.enter)
  const back = join(work, 'back')
  await mkdir(back)
  await s.answer(/Save to .*\(notes\.txt\)/, `${back}${KEY.enter}`)
  await s.screen.waitFor(/retrieved notes\.txt → \S+ \(20 B, sha256 verified\)/)
  t.equal(await readFile(join(back, 'notes.txt'), 'utf8'), 'hello from the menu\n', 'retrieved into the directory given')

  await s.choose(4)
  await s.answer(/File whose replicas to change/, KEY.enter)
  await s.answer(/Replicas besides the server \(1 mirror available\)/, `0${KEY.enter}`)
  await s.screen.waitFor(/notes\.txt: 0 replicas asked, 1 copy/)

  await s.choose(6)
  await s.screen.waitFor(/NODE\s+ID\s+ROLE\s+STATE[^]*primary\s+up[^]*mirror\s+up/)

  await s.choose(5)
  await s.answer(/File to delete/, KEY.enter)
  await s.answer(/Delete notes\.txt for good\?/, `n${KEY.enter}`)
  await s.choose(3)
  await s.screen.waitFor(/notes\.txt/)
  await s.choose(5)
  await s.answer(/File to delete/, KEY.enter)
  await s.answer(/Delete notes\.txt for good\?/, `y${KEY.enter}`)
  await s.screen.waitFor(/deleted notes\.txt/)
  t.notOk(primary.store.stat(id, 'notes.txt'), 'gone from the server')

  for (const [n, what] of [
    [2, 'retrieve'],
    [4, 'replicas'],
    [5, 'delete'],
  ] as const) {
    await s.choose(n)
    await s.screen.waitFor(/no files yet/)
    t.pass(`${what} with no files says so and returns to the menu`)
  }
  await s.choose(7)
  t.equal(await s.done, 0, 'quit exits 0')
})

t.test('connecting: a wrong address is asked again, host:port is taken whole, a bad id is refused', async (t) => {
  const server = await startServer(t)
  const s = session(t, 1)
  await s.answer(/Server host/, `not a host:${KEY.enter}`)
  await s.screen.waitFor(/a host name or an IP address/)
  for (let i = 0; i < 'not a host:'.length; i++) s.input.write('\x7f')
  s.input.write(KEY.enter)
  await s.answer(/Server port/, KEY.enter)
  await s.answer(/Client id.*blank: a new one from the server/, KEY.enter)
  await s.errors.waitFor(/deposito: UNREACHABLE: no server at 127\.0\.0\.1:1 — start one with `npm start` or pass --server/)
  await s.answer(/Server host/, `127.0.0.1:${server.address.port}${KEY.enter}`)
  await s.answer(new RegExp(`Server port.*\\(${server.address.port}\\)`), KEY.enter)
  await s.answer(/Client id/, `nope${KEY.enter}`)
  await s.screen.waitFor(/a client id is a UUID/)
  for (let i = 0; i < 4; i++) s.input.write('\x7f')
  s.input.write(KEY.enter)
  const id = SHOWN_ID.exec(await s.screen.waitFor(SHOWN_ID))![1]!
  await s.choose(7)
  t.equal(await s.done, 0)

  // Next time the saved id is offered, and a blank answer reconnects with it.
  const again = session(t, server.address.port, { home: s.home })
  await again.answer(/Server host/, KEY.enter)
  await again.answer(/Server port/, KEY.enter)
  await again.answer(new RegExp(`Client id.*blank: the saved ${id}`), KEY.enter)
  await again.screen.waitFor(new RegExp(`Your client id is ${id}`))
  await again.choose(7)
  t.equal(await again.done, 0)

  // An id the server never issued: the error names the fix, and the menu asks again.
  const stranger = session(t, server.address.port, { id: '0c1f6c8e-3f1e-4d5b-9b5e-2f8a7c6d5e4f' })
  await stranger.answer(/Server host/, KEY.enter)
  await stranger.answer(/Server port/, KEY.enter)
  await stranger.answer(/Client id/, KEY.enter)
  await stranger.errors.waitFor(/deposito: UNKNOWN_CLIENT: /)
  await stranger.answer(/Server host/, KEY.ctrlC)
  t.equal(await stranger.done, 130, 'Ctrl-C at a prompt leaves with 130')
})

t.test('a failed action is reported and the menu goes on; Ctrl-C inside an action leaves', async (t) => {
  const root = t.testdir()
  const server = await startServer(t, { dataDir: join(root, 'data') })
  // A name with no usable last segment: the retrieve prompt then offers no default path.
  const setup = new DepositoClient({ server: { host: '127.0.0.1', port: server.address.port }, identity: new IdentityFile(join(root, 'home')) })
  await setup.deposit(Readable.from([Buffer.from('odd')]), { name: 'dir/' })
  const s = session(t, server.address.port, { home: join(root, 'home') })
  await connect(s)
  await s.choose(2)
  await s.answer(/File to retrieve/, KEY.enter)
  const prompt = await s.answer(/Save to \(a path or a directory\)/, `${join(root, 'odd.txt')}${KEY.enter}`)
  t.notMatch(prompt, /Save to \(a path or a directory\) \(/, 'no default offered for a name that is no file name')
  await s.screen.waitFor(/retrieved dir\/ → /)
  t.equal(await readFile(join(root, 'odd.txt'), 'utf8'), 'odd')

  await server.close(0)
  await s.choose(3)
  await s.errors.waitFor(/deposito: UNREACHABLE: /)
  await s.choose(1)
  await s.answer(/File to deposit/, KEY.ctrlC)
  t.equal(await s.done, 130, 'Ctrl-C at an action\'s prompt leaves the menu with 130')
})

t.test('an unexpected failure is not swallowed by the menu', async (t) => {
  const home = t.testdir({ 'ids.json': 'not json' })
  const s = session(t, 7420, { home })
  await s.answer(/Server host/, KEY.enter)
  await s.answer(/Server port/, KEY.enter)
  await t.rejects(s.done, SyntaxError)
})

t.test('paths as typed: ~ is the home directory, quotes around a dropped path are not part of it', async (t) => {
  t.equal(localPath('~/x.txt'), join(homedir(), 'x.txt'))
  t.equal(localPath('~'), homedir())
  t.equal(localPath(' "/tmp/a b.txt" '), '/tmp/a b.txt')
  t.equal(localPath("'/tmp/c.txt'"), '/tmp/c.txt')
  t.equal(localPath('plain~name'), 'plain~name')
})
