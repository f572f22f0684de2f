import t from 'tap'
import { transportFlags } from '../../lib/cli/local-cluster.js'

// A local cluster's mirrors speak as its primary does: a --tls primary whose mirrors took plaintext would refuse
// nothing, and one whose mirrors demanded TLS it does not speak would never see them join.
t.test('the mirrors get the primary\'s transport flags', async (t) => {
  t.same(transportFlags({ tls: false, insecurePlaintext: false }), [])
  t.same(transportFlags({ tls: true, insecurePlaintext: false }), ['--tls'])
  t.same(transportFlags({ tls: false, insecurePlaintext: true }), ['--insecure-plaintext'])
})
