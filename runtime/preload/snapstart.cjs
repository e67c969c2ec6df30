'use strict';
/*
 * SnapStart preload for LibreChat (loaded with `node --require`; the runtime adds it to
 * NODE_OPTIONS in snap-start mode only, see streaming_proxy/snapstart.py).
 *
 * Lambda snapshots the booted process and restores that one memory image in every new
 * environment, so everything LibreChat holds at snapshot time is shared: open sockets and
 * every random state. LibreChat has no hooks for this; this module gives the runtime two
 * steps over an inherited socket (SNAPSTART_HOOK_FD, one end of a socketpair the runtime
 * made: no HTTP request can reach it), one JSON line per request and per answer:
 *
 *   before: load what LibreChat's first chat would load (its tokenizer encodings: seconds
 *           of work otherwise paid by the first chat of every restored environment), then
 *           close the MongoDB (mongoose) and Redis (ioredis, node-redis) connections;
 *   after:  make every random source fresh, then reconnect and wait until connected.
 *
 * Fresh randomness, per source:
 *  - crypto.randomBytes/randomFill/randomFillSync/getRandomValues (and webcrypto's), by
 *    wrappers installed at load that XOR the output with a ChaCha20 keystream keyed from
 *    /dev/urandom read after each restore;
 *  - crypto.randomUUID (and webcrypto's) and crypto.randomInt: rebuilt on the wrapped
 *    randomBytes (Node's own keep a cache of random bytes filled before the snapshot);
 *  - Math.random: replaced at load; after a restore it reads the wrapped randomBytes;
 *  - the uuid and nanoid packages' pools (every copy loaded): drained until they refill;
 *  - bson's ObjectId (every copy loaded): a fresh 5-byte process value and counter;
 *  - OpenSSL's own generator (TLS key shares, key generation, signatures): not reachable
 *    from JavaScript; the runtime starts Node with an OpenSSL config that makes the RDRAND
 *    engine OpenSSL's RAND method, so OpenSSL never instantiates a DRBG (no state in memory),
 *    and `before` refuses the snapshot unless that config is loaded and the CPU has RDRAND.
 *
 * Without SNAPSTART_HOOK_FD (on-demand, or a child process that inherits NODE_OPTIONS) it
 * does nothing.
 */

const HOOK_FD_VAR = 'SNAPSTART_HOOK_FD';
const OPENSSL_CONFIG = 'openssl-snapstart.cnf';
const UUID_RNG = /[\\/]uuid[\\/]dist[\\/](?:cjs[\\/]|commonjs-node[\\/])?rng\.js$/;
const NANOID = /[\\/]nanoid[\\/]index\.cjs$/;
const BSON = /[\\/]bson[\\/]lib[\\/]bson\.cjs$/;
const MONGOOSE = /[\\/]mongoose[\\/]lib[\\/]index\.js$/;
const IOREDIS = /[\\/]ioredis[\\/]built[\\/]Redis\.js$/;
const IOREDIS_CLUSTER = /[\\/]ioredis[\\/]built[\\/]cluster[\\/]index\.js$/;
const NODE_REDIS = /[\\/]@redis[\\/]client[\\/]dist[\\/]lib[\\/]client[\\/]index\.js$/;
const LIBRECHAT_API = /[\\/](?:packages|@librechat)[\\/]api[\\/]dist[\\/]index\.c?js$/;
const ENCODINGS = ['o200k_base', 'claude']; // what LibreChat's Tokenizer loads on first use
const CLOSE_TIMEOUT_MS = 5000;

const fdText = process.env[HOOK_FD_VAR];
delete process.env[HOOK_FD_VAR]; // children (MCP servers) must not think they own the channel

const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const Module = require('node:module');

// -- fresh randomness -----------------------------------------------------------------------

let keystream = null; // ChaCha20 keyed after the last restore; null before the first one
let restores = 0;
let fills = 0; // randomFill(Sync) calls: tells when a package's pool refilled

function freshKey() {
  const key = Buffer.alloc(48);
  const fd = fs.openSync('/dev/urandom', 'r');
  try {
    let got = 0;
    while (got < key.length) got += fs.readSync(fd, key, got, key.length - got, null);
  } finally {
    fs.closeSync(fd);
  }
  return key;
}

function xor(view) {
  if (keystream === null || view.byteLength === 0) return;
  const mask = keystream.update(Buffer.alloc(view.byteLength));
  for (let i = 0; i < view.byteLength; i++) view[i] ^= mask[i];
}

function bytesOf(buf, offset, size) {
  const unit = buf.BYTES_PER_ELEMENT || 1;
  const base = ArrayBuffer.isView(buf) ? buf.byteOffset : 0;
  const whole = ArrayBuffer.isView(buf) ? buf.buffer : buf;
  const length = buf.byteLength / unit;
  const start = offset === undefined ? 0 : offset;
  const count = size === undefined ? length - start : size;
  return new Uint8Array(whole, base + start * unit, count * unit);
}

const original = {
  randomBytes: crypto.randomBytes,
  randomFillSync: crypto.randomFillSync,
  randomFill: crypto.randomFill,
  getRandomValues: null,
  mathRandom: Math.random,
};

function randomBytes(size, callback) {
  if (typeof callback === 'function') {
    return original.randomBytes(size, (err, buf) => {
      if (!err) xor(buf);
      callback(err, buf);
    });
  }
  const buf = original.randomBytes(size);
  xor(buf);
  return buf;
}

function randomFillSync(buf, offset, size) {
  const result = original.randomFillSync(buf, offset, size);
  fills++;
  xor(bytesOf(buf, offset, size));
  return result;
}

function randomFill(buf, ...rest) {
  const callback = rest.pop();
  if (typeof callback !== 'function') return original.randomFill(buf, ...rest, callback);
  return original.randomFill(buf, ...rest, (err, filled) => {
    if (!err) {
      fills++;
      xor(bytesOf(filled, rest[0], rest[1]));
    }
    callback(err, filled);
  });
}

const HEX = Array.from({ length: 256 }, (_, i) => (i + 0x100).toString(16).slice(1));
function randomUUID() {
  const b = randomBytes(16);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = (i) => HEX[b[i]];
  return `${h(0)}${h(1)}${h(2)}${h(3)}-${h(4)}${h(5)}-${h(6)}${h(7)}-${h(8)}${h(9)}-` +
    `${h(10)}${h(11)}${h(12)}${h(13)}${h(14)}${h(15)}`;
}

const RANDOM_INT_LIMIT = 2 ** 48;
function randomInt(min, max, callback) {
  if (typeof max === 'function' || max === undefined) {
    callback = max;
    max = min;
    min = 0;
  }
  if (!Number.isSafeInteger(min) || !Number.isSafeInteger(max) || max <= min ||
      max - min > RANDOM_INT_LIMIT - 1) {
    return original.randomInt(min, max, callback); // Node's own validation and errors
  }
  const range = max - min;
  const limit = RANDOM_INT_LIMIT - (RANDOM_INT_LIMIT % range);
  let n;
  do n = randomBytes(6).readUIntBE(0, 6); while (n >= limit);
  const value = min + (n % range);
  if (typeof callback === 'function') {
    process.nextTick(callback, null, value);
    return undefined;
  }
  return value;
}
original.randomInt = crypto.randomInt;

// Math.random: V8's state is in the snapshot; after a restore, 53 bits from the wrapped
// generator, 1024 values per refill.
let mathPool = null;
let mathAt = 0;
function mathRandom() {
  if (keystream === null) return original.mathRandom();
  if (mathPool === null || mathAt >= mathPool.length) {
    mathPool = randomBytes(8 * 1024);
    mathAt = 0;
  }
  const hi = mathPool.readUInt32BE(mathAt) >>> 11; // 21 bits
  const lo = mathPool.readUInt32BE(mathAt + 4); // 32 bits
  mathAt += 8;
  return (hi * 2 ** 32 + lo) / 2 ** 53;
}

function installRandomness() {
  crypto.randomBytes = randomBytes;
  crypto.pseudoRandomBytes = randomBytes;
  crypto.randomFillSync = randomFillSync;
  crypto.randomFill = randomFill;
  crypto.randomUUID = randomUUID;
  crypto.randomInt = randomInt;
  const webcrypto = crypto.webcrypto;
  const proto = Object.getPrototypeOf(webcrypto);
  original.getRandomValues = proto.getRandomValues;
  Object.defineProperty(proto, 'getRandomValues', {
    configurable: true,
    writable: true,
    value: function getRandomValues(array) {
      const result = original.getRandomValues.call(this, array);
      xor(bytesOf(array));
      return result;
    },
  });
  Object.defineProperty(proto, 'randomUUID', {
    configurable: true,
    writable: true,
    value: function randomUUIDWeb() {
      return randomUUID();
    },
  });
  Math.random = mathRandom;
}

/** Drain a package's pool until it refills from the (now re-keyed) generator. */
function drain(draw, most) {
  const before = fills;
  for (let i = 0; i < most && fills === before; i++) draw();
  return fills !== before;
}

function cached(pattern) {
  return Object.keys(require.cache).filter((file) => pattern.test(file))
    .map((file) => ({ file, exports: require.cache[file].exports }));
}

function freshObjectId(ObjectId) {
  const unique = randomBytes(5);
  ObjectId.index = randomBytes(3).readUIntBE(0, 3);
  ObjectId.generate = function generate(time) {
    const seconds = typeof time === 'number' ? time : Math.floor(Date.now() / 1000);
    const inc = ObjectId.getInc();
    const buffer = Buffer.alloc(12);
    buffer.writeUInt32BE(seconds >>> 0, 0);
    unique.copy(buffer, 4);
    buffer[9] = (inc >> 16) & 0xff;
    buffer[10] = (inc >> 8) & 0xff;
    buffer[11] = inc & 0xff;
    return buffer;
  };
}

/** Re-key every source; returns what was made fresh, by source. */
function refreshRandomness() {
  const key = freshKey();
  keystream = crypto.createCipheriv('chacha20', key.subarray(0, 32), key.subarray(32, 48));
  restores++;
  mathPool = null;
  const done = { crypto: true, mathRandom: true, uuid: 0, nanoid: 0, bson: 0 };
  for (const { file, exports } of cached(UUID_RNG)) {
    const rng = typeof exports === 'function' ? exports : exports.default;
    if (typeof rng !== 'function' || !drain(rng, 64)) throw new Error(`uuid pool in ${file} did not refill`);
    done.uuid++;
  }
  for (const { file, exports } of cached(NANOID)) {
    if (typeof exports.random !== 'function' || !drain(() => exports.random(1024), 256)) {
      throw new Error(`nanoid pool in ${file} did not refill`);
    }
    done.nanoid++;
  }
  for (const { file, exports } of cached(BSON)) {
    if (typeof exports.ObjectId !== 'function') throw new Error(`no ObjectId in ${file}`);
    freshObjectId(exports.ObjectId);
    done.bson++;
  }
  return done;
}

// -- connections ------------------------------------------------------------------------------

const clients = { ioredis: new Set(), nodeRedis: new Set(), clusters: new Set() };
const closed = []; // what `before` closed, for `after` to reopen

function track(set, Class) {
  const connect = Class.prototype.connect;
  if (typeof connect !== 'function' || connect.snapstartTracked) return;
  Class.prototype.connect = function trackedConnect(...args) {
    set.add(new WeakRef(this));
    return connect.apply(this, args);
  };
  Class.prototype.connect.snapstartTracked = true;
}

const loadHooks = [
  [IOREDIS, (exports) => track(clients.ioredis, exports.default || exports)],
  [IOREDIS_CLUSTER, (exports) => track(clients.clusters, exports.default || exports)],
  [NODE_REDIS, (exports) => track(clients.nodeRedis, exports.default || exports)],
];

function live(set) {
  const out = [];
  for (const ref of set) {
    const client = ref.deref();
    if (client === undefined) set.delete(ref);
    else out.push(client);
  }
  return out;
}

function withTimeout(promise, what) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish in ${CLOSE_TIMEOUT_MS} ms`)), CLOSE_TIMEOUT_MS);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

function ioredisEnded(client) {
  if (client.status === 'end') return Promise.resolve();
  return new Promise((resolve) => client.once('end', resolve));
}

async function closeConnections() {
  const counts = { mongoose: 0, ioredis: 0, redis: 0 };
  if (live(clients.clusters).some((c) => c.status !== 'end')) {
    throw new Error('an ioredis Cluster client is open: Redis Cluster is not handled by SnapStart yet');
  }
  for (const { exports } of cached(MONGOOSE)) {
    for (const conn of exports.connections || []) {
      if (conn.readyState !== 1) continue;
      const uri = conn._connectionString;
      const options = conn._connectionOptions;
      await withTimeout(conn.close(), 'closing a mongoose connection');
      closed.push({ kind: 'mongoose', reopen: () => conn.openUri(uri, options) });
      counts.mongoose++;
    }
  }
  for (const client of live(clients.ioredis)) {
    if (client.status === 'end' || client.status === 'wait') continue;
    const ended = ioredisEnded(client);
    client.disconnect(false);
    await withTimeout(ended, 'closing an ioredis client');
    // Its owner may reconnect it first (a retry on a timer that fired at restore).
    closed.push({
      kind: 'ioredis',
      reopen: () => (['end', 'close'].includes(client.status) ? client.connect() : undefined),
    });
    counts.ioredis++;
  }
  for (const client of live(clients.nodeRedis)) {
    if (!client.isOpen) continue;
    await withTimeout(client.disconnect(), 'closing a node-redis client');
    closed.push({ kind: 'redis', reopen: () => (client.isOpen ? undefined : client.connect()) });
    counts.redis++;
  }
  return counts;
}

async function reopenConnections() {
  const counts = { mongoose: 0, ioredis: 0, redis: 0 };
  const pending = closed.splice(0);
  const results = await Promise.allSettled(
    pending.map((c) => withTimeout(Promise.resolve().then(c.reopen), `reconnecting ${c.kind}`)),
  );
  const failed = [];
  results.forEach((r, i) => {
    if (r.status === 'fulfilled') counts[pending[i].kind]++;
    else failed.push(`${pending[i].kind}: ${r.reason && r.reason.message}`);
  });
  if (failed.length) throw new Error(`reconnecting failed (${failed.join('; ')})`);
  return counts;
}

// -- priming ----------------------------------------------------------------------------------

/** Work LibreChat defers to its first chat, done now so that the snapshot holds it. Missing
 * pieces (another LibreChat version) are skipped: priming only saves time. */
async function prime() {
  const primed = [];
  for (const { exports } of cached(LIBRECHAT_API)) {
    const tokenizer = exports.Tokenizer;
    if (!tokenizer || typeof tokenizer.initEncoding !== 'function') continue;
    for (const encoding of ENCODINGS) {
      try {
        await tokenizer.initEncoding(encoding);
        primed.push(`tokenizer:${encoding}`);
      } catch {
        // an encoding this version does not ship
      }
    }
  }
  return primed;
}

// -- OpenSSL ------------------------------------------------------------------------------

function opensslChecks() {
  const options = `${process.env.NODE_OPTIONS || ''} ${process.execArgv.join(' ')}`;
  const match = /--openssl-config[= ]"?([^"\s]+)/.exec(options);
  if (!match || path.basename(match[1]) !== OPENSSL_CONFIG) {
    throw new Error(`OpenSSL's generator cannot be made fresh: Node was not started with --openssl-config=.../${OPENSSL_CONFIG}`);
  }
  let cpuinfo = '';
  try {
    cpuinfo = fs.readFileSync('/proc/cpuinfo', 'latin1');
  } catch {
    // below
  }
  if (!/^flags\s*:.*\brdrand\b/m.test(cpuinfo)) {
    throw new Error("OpenSSL's generator cannot be made fresh: the CPU has no RDRAND (x86_64 only)");
  }
}

// -- the channel --------------------------------------------------------------------------

const steps = {
  async before() {
    opensslChecks();
    const primed = await prime();
    return { primed, closed: await closeConnections() };
  },
  async after() {
    const fresh = refreshRandomness();
    return { fresh, reconnected: await reopenConnections(), restores };
  },
};

function serve(fd) {
  const channel = new net.Socket({ fd, readable: true, writable: true });
  channel.unref(); // never keeps LibreChat alive
  channel.setEncoding('utf8');
  const answer = (reply) => channel.write(`${JSON.stringify(reply)}\n`);
  let buffered = '';
  let queue = Promise.resolve();
  channel.on('data', (text) => {
    buffered += text;
    let end;
    while ((end = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, end);
      buffered = buffered.slice(end + 1);
      queue = queue.then(() => run(line)).then(answer);
    }
  });
  channel.on('error', () => {}); // the runtime went away: nothing left to serve
  answer({ ok: true, preload: 'snapstart', pid: process.pid });
}

async function run(line) {
  const started = process.hrtime.bigint();
  let step = '?';
  try {
    step = JSON.parse(line).step;
    if (!Object.hasOwn(steps, step)) throw new Error(`unknown step ${JSON.stringify(step)}`);
    const result = await steps[step]();
    return { ok: true, step, ms: Number(process.hrtime.bigint() - started) / 1e6, ...result };
  } catch (err) {
    return { ok: false, step, error: (err && err.message) || String(err) };
  }
}

if (fdText !== undefined && /^\d+$/.test(fdText)) {
  installRandomness();
  const compile = Module._extensions['.js'];
  Module._extensions['.js'] = function snapstartLoad(module, filename) {
    compile.call(this, module, filename);
    for (const [pattern, hook] of loadHooks) if (pattern.test(filename)) hook(module.exports);
  };
  serve(Number(fdText));
}
