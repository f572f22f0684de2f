import t from 'tap'
import { placeReplicas } from '../../lib/cluster/placement.js'

/** Rendezvous placement of replicas on mirrors (lib/cluster/placement.ts). */
const OWNER = '0c1f6c8e-3f1e-4d5b-9b5e-2f8a7c6d5e4f'
const MIRRORS = ['10.0.0.1:7420', '10.0.0.2:7420', '10.0.0.3:7420', '10.0.0.4:7420']
const NAMES = Array.from({ length: 1000 }, (_, i) => `file-${i}.bin`)

t.test('the choice is stable: same inputs, same mirrors, whatever the order of the list', async (t) => {
  const reversed = [...MIRRORS].reverse()
  const rotated = [...MIRRORS.slice(2), ...MIRRORS.slice(0, 2)]
  const problems: string[] = []
  for (const name of NAMES) {
    for (const count of [1, 2, 3]) {
      const chosen = placeReplicas(OWNER, name, MIRRORS, count)
      const where = `${name} ×${count}: [${chosen}]`
      if (chosen.length !== count) problems.push(`${where}: ${chosen.length} chosen`)
      if (new Set(chosen).size !== chosen.length) problems.push(`${where}: a mirror twice`)
      if (!chosen.every((m) => MIRRORS.includes(m))) problems.push(`${where}: a mirror not in the list`)
      if (placeReplicas(OWNER, name, MIRRORS, count).join() !== chosen.join()) problems.push(`${where}: differs when asked again`)
      if (placeReplicas(OWNER, name, reversed, count).join() !== chosen.join()) problems.push(`${where}: differs with the list reversed`)
      if (placeReplicas(OWNER, name, rotated, count).join() !== chosen.join()) problems.push(`${where}: differs with the list rotated`)
    }
    // Asking for fewer is a prefix of asking for more: adding a replica never moves the existing ones.
    if (placeReplicas(OWNER, name, MIRRORS, 4).slice(0, 2).join() !== placeReplicas(OWNER, name, MIRRORS, 2).join()) {
      problems.push(`${name}: 2 replicas are not the first 2 of 4`)
    }
  }
  t.same(problems.slice(0, 10), [], `1000 names × counts 1-3: the same choice every time, from any list order (${problems.length} problems)`)
  const input = [...MIRRORS]
  placeReplicas(OWNER, 'a', input, 2)
  t.same(input, MIRRORS, 'placeReplicas does not reorder its argument')
})

t.test('owner and name both matter', async (t) => {
  const other = '9d2e1f5a-4b3c-4a2d-8e1f-0a9b8c7d6e5f'
  const differsByOwner = NAMES.filter((n) => placeReplicas(OWNER, n, MIRRORS, 1)[0] !== placeReplicas(other, n, MIRRORS, 1)[0])
  t.ok(differsByOwner.length > 500, `another owner places most names elsewhere (${differsByOwner.length}/1000 differ; ~750 expected)`)
  // The separator keeps (owner, name) pairs apart: "ab"+"c" and "a"+"bc" are different files.
  const joined = NAMES.filter((n) => placeReplicas('x', `y${n}`, MIRRORS, 4).join() !== placeReplicas('xy', n, MIRRORS, 4).join())
  t.ok(joined.length > 900, `owner/name boundaries are not blurred (${joined.length}/1000 differ)`)
})

t.test('1000 names spread roughly evenly over 4 mirrors', async (t) => {
  for (const count of [1, 2]) {
    const load = new Map(MIRRORS.map((m) => [m, 0]))
    for (const name of NAMES) for (const m of placeReplicas(OWNER, name, MIRRORS, count)) load.set(m, load.get(m)! + 1)
    const expected = (NAMES.length * count) / MIRRORS.length
    // Binomial(n, p): sd = sqrt(n p (1-p)) ≈ 13.7 for count 1, 15.8 per mirror for count 2; ±25% is > 4.5 sd.
    for (const [mirror, n] of load) t.ok(n > expected * 0.75 && n < expected * 1.25, `count ${count}: ${mirror} holds ${n} (≈${expected})`)
    t.equal([...load.values()].reduce((a, b) => a + b, 0), NAMES.length * count, 'every replica placed once')
  }
  // Also as the first choice among 4 of 10 mirrors: every mirror gets some work.
  const many = Array.from({ length: 10 }, (_, i) => `10.0.1.${i}:7420`)
  const firsts = new Set(NAMES.map((n) => placeReplicas(OWNER, n, many, 1)[0]))
  t.equal(firsts.size, 10, 'with 10 mirrors each is first choice for some name')
})

t.test('removing a mirror moves only the files it held', async (t) => {
  const gone = MIRRORS[1]!
  const rest = MIRRORS.filter((m) => m !== gone)
  const problems: string[] = []
  let moved1 = 0
  let moved2 = 0
  for (const name of NAMES) {
    const before1 = placeReplicas(OWNER, name, MIRRORS, 1)
    const after1 = placeReplicas(OWNER, name, rest, 1)
    if (before1[0] === gone) moved1++
    else if (after1[0] !== before1[0]) problems.push(`${name}: moved from ${before1[0]} though ${gone} did not hold it`)

    const before2 = placeReplicas(OWNER, name, MIRRORS, 2)
    const after2 = placeReplicas(OWNER, name, rest, 2)
    if (!before2.includes(gone)) {
      if (after2.join() !== before2.join()) problems.push(`${name}: [${before2}] became [${after2}] though ${gone} held neither copy`)
    } else {
      moved2++
      const kept = before2.find((m) => m !== gone)!
      if (!after2.includes(kept)) problems.push(`${name}: lost its copy on ${kept} too`)
      if (after2.includes(gone)) problems.push(`${name}: still placed on the removed mirror`)
    }
    // And adding the mirror back only takes files onto it: nothing moves between the others.
    if (before1[0] !== after1[0] && before1[0] !== gone) problems.push(`${name}: adding ${gone} moved it from ${after1[0]} to ${before1[0]}`)
  }
  t.same(problems.slice(0, 10), [], `no file moved that ${gone} did not hold (${problems.length} problems)`)
  t.ok(moved1 > 150 && moved1 < 350, `with 1 replica, ${moved1} files (those on ${gone}) move; ~250 expected`)
  t.ok(moved2 > 380 && moved2 < 620, `with 2 replicas, ${moved2} files had a copy on ${gone}; ~500 expected`)
})

t.test('edge counts', async (t) => {
  t.same(placeReplicas(OWNER, 'a', MIRRORS, 0), [], 'no replicas asked: none chosen')
  t.same(placeReplicas(OWNER, 'a', [], 0), [], 'no mirrors, none asked')
  t.same(placeReplicas(OWNER, 'a', [], 2), [], 'no mirrors: none to choose (the caller refuses with NO_REPLICAS first)')
  t.same(placeReplicas(OWNER, 'a', MIRRORS, 9).sort(), [...MIRRORS].sort(), 'more asked than exist: all of them, each once')
  t.same(placeReplicas(OWNER, 'a', ['only:1'], 1), ['only:1'])
})
