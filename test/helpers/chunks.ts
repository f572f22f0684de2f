/** Ways to cut one buffer into writes, for hitting every chunk boundary a parser can meet. */
export function cutAt(buf: Buffer, points: number[]): Buffer[] {
  const cuts = [...new Set(points.map((p) => p % (buf.length + 1)))].sort((a, b) => a - b)
  const parts: Buffer[] = []
  let prev = 0
  for (const c of cuts) {
    parts.push(buf.subarray(prev, c))
    prev = c
  }
  parts.push(buf.subarray(prev))
  return parts
}

export const bytewise = (buf: Buffer): Buffer[] => [...buf].map((b) => Buffer.from([b]))
