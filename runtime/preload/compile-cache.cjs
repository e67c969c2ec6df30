'use strict';
// Turns on Node's compile cache over the copy baked into the image (runtime/Dockerfile fills
// it with runtime/fill-compile-cache.sh), before LibreChat's first module loads.
//
// Why not simply NODE_COMPILE_CACHE: Node keeps its entries in <dir>/<version tag>-<uid>/, and
// the image is built as root while Lambda runs it as a user of its own choosing, so the baked
// directory would never be found. At start this links the baked tag directory under the
// running uid in the temporary directory and enables the cache there. Node reads the baked
// entries through the link; its writes of new ones (at exit) fail quietly on the read-only
// file system, which costs nothing. Node < 22.1 has no compile cache: nothing happens.
//
// NODE_COMPILE_CACHE_BAKED names the baked directory (unset: nothing happens);
// NODE_COMPILE_CACHE or NODE_DISABLE_COMPILE_CACHE, when set, take precedence.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const Module = require('node:module');

/** Link each baked `<tag>-<uid>` directory as `<tag>-<our uid>` under `into`; true if any. */
function linkBaked(baked, into, uid) {
  let entries;
  try {
    entries = fs.readdirSync(baked);
  } catch {
    return false; // no baked cache (e.g. a Node without one at build time)
  }
  fs.mkdirSync(into, { recursive: true });
  let linked = false;
  for (const entry of entries) {
    const tag = /^(.+)-\d+$/.exec(entry);
    if (!tag) continue;
    try {
      fs.symlinkSync(path.join(baked, entry), path.join(into, `${tag[1]}-${uid}`));
    } catch (error) {
      if (error.code !== 'EEXIST') throw error; // an earlier process linked it
    }
    linked = true;
  }
  return linked;
}

function enableBakedCompileCache(env = process.env) {
  const baked = env.NODE_COMPILE_CACHE_BAKED;
  if (!baked || env.NODE_COMPILE_CACHE || env.NODE_DISABLE_COMPILE_CACHE) return null;
  if (typeof Module.enableCompileCache !== 'function') return null;
  const into = path.join(os.tmpdir(), 'node-compile-cache');
  const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
  if (!linkBaked(baked, into, uid)) return null;
  return Module.enableCompileCache(into);
}

try {
  enableBakedCompileCache();
} catch (error) {
  // A cache is an optimisation: LibreChat starts without it, a little slower.
  process.emitWarning(`compile cache not enabled: ${error.message}`, 'CompileCacheWarning');
}

module.exports = { enableBakedCompileCache, linkBaked };
