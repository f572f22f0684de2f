// Helper for test/store/dir-lock.test.ts, run as a child process. Plain ESM on purpose: it imports the compiled
// lock from dist/ (built by `npm test`'s pretest or `npx tsc -p .`), since tap's TS loader only applies to the files
// tap itself runs.
//
// usage: node lock-holder.mjs DATA_DIR [--wait-go]
// stdout: "ready\n" once loaded; with --wait-go it then waits for a line on stdin before locking, so that a test
// can release many children at the same instant. Then "locked\n", or "CODE message\n" if lockDataDir refused.
// A child that got the lock holds it until its stdin closes, then releases it and exits 0.
import { createInterface } from 'node:readline'
import { lockDataDir } from '../../dist/store/dir-lock.js'

const [dir, flag] = process.argv.slice(2)
if (!dir) {
  process.stderr.write('usage: node lock-holder.mjs DATA_DIR [--wait-go]\n')
  process.exit(2)
}

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]()
process.stdout.write('ready\n')
if (flag === '--wait-go') await lines.next()

let unlock
try {
  unlock = await lockDataDir(dir)
} catch (err) {
  process.stdout.write(`${err.code} ${err.message}\n`)
  process.exit(0)
}
process.stdout.write('locked\n')
// Drain stdin: the loop ends when the parent closes it (or dies, which closes it too).
while (!(await lines.next()).done);
await unlock()
