import { readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { EXIT, runClient, runServerToExit, startServerProcess } from '../helpers/bins.js'

// bin/server and bin/client as a user runs them, with TLS: the codes, the exit statuses and the words.

t.test('a --tls node: plaintext is TLS_REQUIRED, --tls pins the fingerprint bin/server prints, a new certificate is UNTRUSTED', async (t) => {
  const dir = t.testdir()
  const home = join(dir, 'home')
  const src = join(dir, 'f.txt')
  await writeFile(src, 'over TLS\n')
  const first = await startServerProcess(t, { dataDir: join(dir, 'first'), args: ['--tls'] })

  const plain = await runClient(['list'], { home, port: first.port })
  t.equal(plain.code, EXIT.TLS_REQUIRED)
  t.match(plain.stderr, /^deposito: TLS_REQUIRED: this node accepts only TLS: use --tls \(bin\/client\) or DEPOSITO_TLS=1\n$/)

  const dep = await runClient(['--tls', 'deposit', src], { home, port: first.port })
  t.equal(dep.code, 0, dep.stderr)
  const printed = await runServerToExit(['fingerprint', '--data', first.dataDir])
  t.equal(printed.code, 0, printed.stderr)
  const fp1 = printed.stdout.trim()
  t.match(fp1, /^sha256:[0-9a-f]{64}$/)
  const pins = join(home, 'known_servers.json')
  t.same(JSON.parse(await readFile(pins, 'utf8')), { [`127.0.0.1:${first.port}`]: fp1 }, 'pinned at first use')
  t.equal((await stat(pins)).mode & 0o777, 0o600)
  t.ok(first.logLines.some((l) => l.includes(`"fingerprint":"${fp1}"`)), 'the node logs its fingerprint at start')
  const env = { DEPOSITO_TLS: '1' }
  t.equal((await runClient(['list'], { home, port: first.port, env })).code, 0, 'DEPOSITO_TLS=1 is --tls')

  // Same address, a new data dir: a new certificate.
  await first.stop()
  const second = await startServerProcess(t, { dataDir: join(dir, 'second'), port: first.port, args: ['--tls'] })
  const fp2 = (await runServerToExit(['fingerprint', '--data', second.dataDir])).stdout.trim()
  const refused = await runClient(['--tls', 'list'], { home, port: second.port })
  t.equal(refused.code, EXIT.UNTRUSTED)
  t.match(refused.stderr, /^deposito: UNTRUSTED: /)
  for (const part of [fp1, fp2, `--fingerprint ${fp2}`, 'bin/server fingerprint --data DIR', pins]) t.ok(refused.stderr.includes(part), `says ${part}`)

  const wrong = await runClient(['--fingerprint', fp1, 'list'], { home, port: second.port })
  t.equal(wrong.code, EXIT.UNTRUSTED, 'a wrong --fingerprint is refused')
  const colons = fp2.slice(7).toUpperCase().match(/../g)!.join(':')
  const right = await runClient(['--fingerprint', colons, 'list'], { home, port: second.port })
  t.equal(right.code, 0, right.stderr)
  t.equal(JSON.parse(await readFile(pins, 'utf8'))[`127.0.0.1:${second.port}`], fp2, 're-pinned')
  t.equal((await runClient(['--tls', 'list'], { home, port: second.port })).code, 0, 'trusted from then on')
  t.equal((await runClient(['--fingerprint', 'nope', 'list'], { home, port: second.port })).code, EXIT.USAGE)
})

t.test('loopback is plaintext by default; --insecure-plaintext warns; contradictory or premature flags are refused', async (t) => {
  const dir = t.testdir()
  const node = await startServerProcess(t, { dataDir: join(dir, 'plain') })
  t.equal((await runClient(['list'], { home: join(dir, 'home'), port: node.port })).code, 0)
  const loud = await startServerProcess(t, { dataDir: join(dir, 'loud'), args: ['--insecure-plaintext'] })
  t.ok(loud.logLines.some((l) => l.includes('"level":40') && l.includes('--insecure-plaintext')), 'a warning line at start')
  const both = await runServerToExit(['--port', '0', '--data', join(dir, 'both'), '--tls', '--insecure-plaintext'])
  t.equal(both.code, EXIT.USAGE)
  t.match(both.stderr, /--tls and --insecure-plaintext/)
  const none = await runServerToExit(['fingerprint', '--data', join(dir, 'never-started')])
  t.equal(none.code, EXIT.NOT_FOUND)
  t.match(none.stderr, /no node certificate/)
})
