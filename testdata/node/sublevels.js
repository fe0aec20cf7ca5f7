'use strict'
// The Node side of party's TestNodeSublevels (node_interop_test.go), with
// classic-level, whose sublevels are abstract-level's.
//
//   node sublevels.js write DIR   writes through sublevels and the root
//   node sublevels.js dump DIR    prints, as JSON, what each sublevel in
//                                 PATHS holds: relative keys and values, hex
//   node sublevels.js names DIR   prints, as JSON, the prefix abstract-level
//                                 gives each name in NAMES, or null if it
//                                 refuses the name
const { ClassicLevel } = require('classic-level')

const PATHS = [['users'], ['users', 'admins'], ['bin'], ['go'], ['go', 'nested']]
const bytes = { keyEncoding: 'buffer', valueEncoding: 'buffer' }

async function write (db) {
  const users = db.sublevel('users') // utf8 keys and values
  await users.put('alice', 'a')
  await users.batch([
    { type: 'put', key: 'bob', value: 'b' },
    { type: 'put', key: 'zoë', value: 'z' },
    { type: 'put', key: 'gone', value: 'g' },
    { type: 'del', key: 'gone' }
  ])
  await users.sublevel('admins').put('root', 'r')
  const bin = db.sublevel('bin', bytes)
  await bin.put(Buffer.from([0x00, 0xff, 0x21, 0x22, 0x00]), Buffer.from([1, 0, 2]))
  await bin.put(Buffer.from([0xff, 0xff]), Buffer.alloc(0))
  // Keys next to a sublevel, outside it.
  await db.put(Buffer.from('plain'), Buffer.from('p'))
  await db.put(Buffer.from('!users'), Buffer.from('outside'))
  await db.put(Buffer.from('!users"'), Buffer.from('upper bound'))
}

async function dump (db) {
  const out = {}
  for (const path of PATHS) {
    const sub = path.reduce((d, name) => d.sublevel(name, bytes), db)
    const entries = []
    for await (const [k, v] of sub.iterator()) entries.push([k.toString('hex'), v.toString('hex')])
    out[path.join('/')] = entries
  }
  process.stdout.write(JSON.stringify(out) + '\n')
}

// NAMES: every code point below 256 alone, and names that trimming,
// separators and non-ASCII bytes affect.
const NAMES = Array.from({ length: 256 }, (_, c) => String.fromCharCode(c)).concat(
  ['', '!!', '!a!', '!!a', 'a!!', 'a!b', 'a b', 'é', 'ab~#', '"a', 'a"', '\u20ac', 'A-Z_0.9/:@'])

function names (db) {
  const out = NAMES.map(name => {
    try {
      return [name, db.sublevel(name).prefix]
    } catch (err) {
      if (err.code !== 'LEVEL_INVALID_PREFIX') throw err
      return [name, null]
    }
  })
  process.stdout.write(JSON.stringify(out) + '\n')
}

async function main () {
  const [mode, dir] = process.argv.slice(2)
  const db = new ClassicLevel(dir, bytes)
  await db.open()
  try {
    if (mode === 'write') await write(db)
    else if (mode === 'dump') await dump(db)
    else if (mode === 'names') names(db)
    else throw new Error('unknown mode ' + mode)
  } finally {
    await db.close()
  }
}

main().catch(err => { console.error(err); process.exit(1) })
