import { readFile } from 'node:fs/promises'
import t from 'tap'
import { SERVER_NODE_FLAGS } from '../../lib/cli/node-flags.js'

// Mirrors of --local-cluster are started as `node FLAGS bin/server`; the flags must be the ones bin/server's own
// first line gives a server started by hand.
t.test("the local cluster's mirrors get bin/server's node flags", async (t) => {
  const shebang = (await readFile(new URL('../../bin/server', import.meta.url), 'utf8')).split('\n')[0]
  t.equal(shebang, `#!/usr/bin/env -S node ${SERVER_NODE_FLAGS.join(' ')}`)
})
