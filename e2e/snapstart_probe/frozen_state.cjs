'use strict';
/*
 * Loaded before the SnapStart preload by the uniqueness probe: every random source Node
 * offers JavaScript becomes a function of SNAPSIM_SEED, so two processes with one seed hold
 * the same random state, as two environments restored from one snapshot do. (OpenSSL's own
 * generator cannot be made deterministic from here; the probe checks it separately.)
 */
const crypto = require('node:crypto');

let counter = 0;
const seed = process.env.SNAPSIM_SEED || 'snapshot';
function frozen(n) {
  const out = Buffer.alloc(n);
  for (let at = 0; at < n; at += 32) {
    crypto.createHash('sha256').update(`${seed}:${counter++}`).digest().copy(out, at);
  }
  return out;
}
function fill(view) {
  const bytes = new Uint8Array(view.buffer || view, view.byteOffset || 0, view.byteLength);
  bytes.set(frozen(bytes.byteLength));
  return view;
}
function range(buf, offset, size) {
  const unit = buf.BYTES_PER_ELEMENT || 1;
  const start = offset || 0;
  const count = size === undefined ? buf.byteLength / unit - start : size;
  return new Uint8Array(buf.buffer || buf, (buf.byteOffset || 0) + start * unit, count * unit);
}

crypto.randomBytes = (n, cb) => (cb ? process.nextTick(cb, null, frozen(n)) : frozen(n));
crypto.randomFillSync = (buf, offset, size) => {
  fill(range(buf, offset, size));
  return buf;
};
crypto.randomFill = (buf, ...rest) => {
  const cb = rest.pop();
  fill(range(buf, rest[0], rest[1]));
  process.nextTick(cb, null, buf);
};
const proto = Object.getPrototypeOf(crypto.webcrypto);
Object.defineProperty(proto, 'getRandomValues', {
  configurable: true, writable: true, value: (array) => fill(array),
});
Math.random = () => frozen(8).readUIntBE(0, 6) / 2 ** 48;
