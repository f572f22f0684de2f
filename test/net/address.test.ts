import t from 'tap'
import { DEFAULT_SERVER, formatAddress, parseAddress, parseAddressList } from '../../lib/net/address.js'
import { DEFAULT_PORT } from '../../lib/protocol/values.js'

t.test('HOST alone takes the default port', async (t) => {
  t.same(parseAddress('example.org'), { host: 'example.org', port: DEFAULT_PORT })
  t.same(parseAddress('  10.0.0.5  '), { host: '10.0.0.5', port: DEFAULT_PORT }, 'surrounding blanks are trimmed')
  t.same(parseAddress(DEFAULT_SERVER), { host: '127.0.0.1', port: DEFAULT_PORT })
})

t.test('HOST:PORT', async (t) => {
  t.same(parseAddress('127.0.0.1:9000'), { host: '127.0.0.1', port: 9000 })
  t.same(parseAddress('localhost:1'), { host: 'localhost', port: 1 }, 'lowest port')
  t.same(parseAddress('localhost:65535'), { host: 'localhost', port: 65535 }, 'highest port')
})

t.test('[v6]:PORT and [v6]', async (t) => {
  t.same(parseAddress('[::1]:7420'), { host: '::1', port: 7420 })
  t.same(parseAddress('[fe80::1]'), { host: 'fe80::1', port: DEFAULT_PORT })
})

t.test('bad addresses are USAGE errors naming the input', async (t) => {
  for (const bad of ['host:0', 'host:70000', 'host:65536', 'host:x', 'host:', ':7420', '', '::1', 'a:1:2', '[::1]x', 'host:123456']) {
    t.throws(() => parseAddress(bad), { name: 'DepositoError', code: 'USAGE' }, JSON.stringify(bad))
  }
  t.throws(() => parseAddress('host:70000'), { message: /"host:70000"/ }, 'the message quotes the input')
})

t.test('formatAddress brackets v6 hosts and round-trips through parseAddress', async (t) => {
  t.equal(formatAddress({ host: '127.0.0.1', port: 7420 }), '127.0.0.1:7420')
  t.equal(formatAddress({ host: '::1', port: 8000 }), '[::1]:8000')
  for (const text of ['127.0.0.1:7420', 'example.org:1', '[::1]:7420', '[2001:db8::2]:65535']) {
    t.equal(formatAddress(parseAddress(text)), text, text)
  }
  for (const address of [{ host: 'h', port: 2 }, { host: '::', port: 443 }]) {
    t.same(parseAddress(formatAddress(address)), address)
  }
})

t.test('parseAddressList: a primary then its mirrors, in order', async (t) => {
  t.same(parseAddressList('a:1, b:2,[::1]:3'), [
    { host: 'a', port: 1 },
    { host: 'b', port: 2 },
    { host: '::1', port: 3 },
  ])
  t.throws(() => parseAddressList(' , '), { code: 'USAGE' })
  t.throws(() => parseAddressList('a:1,b:0'), { code: 'USAGE' })
})
