import t from 'tap'
import { askServerFlags, withAskedFlags } from '../../lib/cli/server-menu.js'
import { KEY, fakeTty, keyboard } from '../helpers/terminal.js'

// Bare `bin/server` at a terminal: the answers become flags. (menus-pty.test.ts starts a real one this way.)

function terminal() {
  const keys = keyboard()
  const io = { input: Object.assign(keys.input, { isTTY: true }), output: fakeTty(keys.screen) }
  return { ...keys, io }
}

t.test('a primary: port and data directory', async (t) => {
  const k = terminal()
  const flags = withAskedFlags(['node', 'bin/server'], k.io)
  await k.answer(/Port to listen on \(7420\)/, `7500${KEY.enter}`)
  await k.answer(/Address to listen on/, KEY.enter)
  await k.answer(/Data directory \(\.\/data\)/, KEY.enter)
  await k.answer(/Join a primary as its mirror\?/, KEY.enter)
  t.same(await flags, ['node', 'bin/server', '--port', '7500', '--data', './data'])
})

t.test('a mirror: the primary to join, and the secret file unless DEPOSITO_SECRET holds it', async (t) => {
  const k = terminal()
  const flags = askServerFlags(k.io, {})
  await k.answer(/Port to listen on/, `7421${KEY.enter}`)
  await k.answer(/Address to listen on/, KEY.enter)
  await k.answer(/Data directory/, `data-2${KEY.enter}`)
  await k.answer(/Join a primary as its mirror\?/, `y${KEY.enter}`)
  await k.answer(/Primary address/, `alpha:99999${KEY.enter}`)
  await k.screen.waitFor(/a primary's address, e\.g\. 127\.0\.0\.1:7420/)
  for (let i = 0; i < 'alpha:99999'.length; i++) k.input.write('\x7f')
  k.input.write(`alpha:7420${KEY.enter}`)
  await k.answer(/Cluster secret file/, `secret${KEY.enter}`)
  t.same(await flags, ['--port', '7421', '--data', 'data-2', '--join', 'alpha:7420', '--secret-file', 'secret'])

  const fromEnv = terminal()
  const envFlags = askServerFlags(fromEnv.io, { DEPOSITO_SECRET: 'a secret from the environment' })
  await fromEnv.answer(/Port to listen on/, KEY.enter)
  await fromEnv.answer(/Address to listen on/, KEY.enter)
  await fromEnv.answer(/Data directory/, KEY.enter)
  await fromEnv.answer(/Join a primary/, `y${KEY.enter}`)
  await fromEnv.answer(/Primary address/, `127.0.0.1:7420${KEY.enter}`)
  t.same(await envFlags, ['--port', '7420', '--data', './data', '--join', '127.0.0.1:7420'], 'no secret question')
})

t.test('a node other machines reach: the listen address becomes --host', async (t) => {
  const k = terminal()
  const flags = askServerFlags(k.io, {})
  await k.answer(/Port to listen on/, KEY.enter)
  await k.answer(/Address to listen on \(127\.0\.0\.1: this machine only; 0\.0\.0\.0: every interface\) \(127\.0\.0\.1\)/, `0.0.0.0${KEY.enter}`)
  await k.answer(/Data directory/, KEY.enter)
  await k.answer(/Join a primary/, KEY.enter)
  t.same(await flags, ['--port', '7420', '--host', '0.0.0.0', '--data', './data'])
})

t.test('flags given, or no terminal: nothing is asked', async (t) => {
  const k = terminal()
  t.same(await withAskedFlags(['node', 'bin/server', '--port', '1'], k.io), ['node', 'bin/server', '--port', '1'])
  const piped = { input: keyboard().input, output: k.io.output }
  t.same(await withAskedFlags(['node', 'bin/server'], piped), ['node', 'bin/server'], 'a supervisor starts it bare: the defaults')
  t.equal(k.screen.raw, '', 'not a prompt drawn')
})

t.test('Ctrl-C: undefined (the caller exits 130), nothing started', async (t) => {
  const k = terminal()
  const flags = withAskedFlags(['node', 'bin/server'], k.io)
  await k.answer(/Port to listen on/, KEY.ctrlC)
  t.equal(await flags, undefined)
})

t.test('an unexpected failure is not mistaken for Ctrl-C', async (t) => {
  const k = terminal()
  const broken = Object.assign(k.io.output, { write: () => { throw new Error('screen gone') } })
  await t.rejects(withAskedFlags(['node', 'bin/server'], { input: k.io.input, output: broken }), /screen gone/)
})
