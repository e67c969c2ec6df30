#!/bin/sh
# Fills Node's compile cache with LibreChat's start-up module graph, at image build time.
#
#   fill-compile-cache.sh <LibreChat API directory> <cache directory>
#
# The API server is started with no database reachable: it loads its whole start-up graph,
# fails to connect within a second and exits, and Node writes the cache at exit. Nothing else
# runs (no listening, no request). Uses the `node` on PATH, the one the image runs; a Node
# without a compile cache (< 22.1) skips the step. runtime/preload/compile-cache.cjs turns the
# cache on at run time; bench/compile_cache.py measures what it saves.
set -eu
api=$1
cache=$2
if ! node -e 'process.exit(typeof require("node:module").enableCompileCache === "function" ? 0 : 1)'; then
    echo "fill-compile-cache: node $(node --version) has no compile cache (needs >= 22.1); skipped"
    exit 0
fi
scratch=$(mktemp -d)
# Port 9 refuses at once; one second of server selection instead of Mongoose's thirty.
(cd "$api" && NODE_COMPILE_CACHE=$cache \
    MONGO_URI='mongodb://127.0.0.1:9/LibreChat?serverSelectionTimeoutMS=1000' \
    NODE_ENV=production LIBRECHAT_LOG_DIR=$scratch HOST=127.0.0.1 PORT=0 \
    timeout 300 node server/index.js >"$scratch/fill.log" 2>&1) || true
modules=$(find "$cache" -type f | wc -l)
if [ "$modules" -lt 100 ]; then
    echo "fill-compile-cache: only $modules modules cached; LibreChat's output:" >&2
    tail -n 30 "$scratch/fill.log" >&2
    exit 1
fi
rm -rf "$scratch"
chmod -R a+rX "$cache"
echo "fill-compile-cache: $modules modules, $(du -sh "$cache" | cut -f1)"
