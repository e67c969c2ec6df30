'use strict';
/*
 * The uniqueness probe: loads every copy of uuid, nanoid and bson under PROBE_MODULES (a
 * node_modules directory: LibreChat's own, or a test fixture), uses each source the way a
 * booting LibreChat does (pools fill), prints "ready", waits for a line on stdin (meanwhile
 * the driver may run the preload's before/after steps: the restore), then prints the next
 * value of every source as one JSON line.
 */
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const root = process.env.PROBE_MODULES;

function copies(name) {
  const found = [];
  const walk = (dir, depth) => {
    let entries = [];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      if (!entry.isDirectory()) continue;
      const full = path.join(dir, entry.name);
      if (entry.name === name && fs.existsSync(path.join(full, 'package.json'))) found.push(full);
      else if (entry.name.startsWith('@') || entry.name === 'node_modules') walk(full, depth);
      else if (depth < 3) walk(path.join(full, 'node_modules'), depth + 1);
    }
  };
  walk(root, 0);
  return found;
}

// Copies that cannot be required from CommonJS (ESM-only builds) are not what LibreChat loads.
function loadable(name, check) {
  const out = [];
  for (const dir of copies(name)) {
    try {
      const m = require(dir);
      if (check(m)) out.push([path.relative(root, dir), m]);
    } catch {
      // below
    }
  }
  return out;
}
const uuids = loadable('uuid', (m) => typeof m.v4 === 'function');
const nanoids = loadable('nanoid', (m) => typeof m.nanoid === 'function');
const bsons = loadable('bson', (m) => typeof m.ObjectId === 'function');

// Boot-time use: what fills the pools and caches a snapshot would keep.
for (let i = 0; i < 3; i++) {
  crypto.randomUUID();
  Math.random();
  for (const [, m] of uuids) m.v4({});
  for (const [, m] of nanoids) m.nanoid();
  for (const [, m] of bsons) new m.ObjectId();
}

function next() {
  const v = {};
  v['crypto.randomBytes'] = crypto.randomBytes(16).toString('hex');
  v['crypto.randomFillSync'] = crypto.randomFillSync(Buffer.alloc(16)).toString('hex');
  v['crypto.getRandomValues'] = Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString('hex');
  v['webcrypto.getRandomValues'] = Buffer.from(globalThis.crypto.getRandomValues(new Uint8Array(16))).toString('hex');
  v['crypto.randomUUID'] = crypto.randomUUID();
  v['webcrypto.randomUUID'] = globalThis.crypto.randomUUID();
  v['crypto.randomInt'] = String(crypto.randomInt(2 ** 40));
  v['Math.random'] = String(Math.random());
  for (const [dir, m] of uuids) {
    v[`uuid.v4 ${dir}`] = m.v4();
    v[`uuid.v4 pool ${dir}`] = m.v4({});
  }
  for (const [dir, m] of nanoids) v[`nanoid ${dir}`] = m.nanoid();
  for (const [dir, m] of bsons) {
    const id = new m.ObjectId().toHexString();
    v[`ObjectId process value ${dir}`] = id.slice(8, 18);
    v[`ObjectId counter ${dir}`] = id.slice(18, 24);
  }
  return v;
}

process.stdout.write('ready\n');
process.stdin.once('data', () => {
  crypto.randomFill(Buffer.alloc(16), (err, buf) => {
    const values = next();
    values['crypto.randomFill'] = buf.toString('hex');
    process.stdout.write(`${JSON.stringify(values)}\n`);
    process.exit(0);
  });
});
