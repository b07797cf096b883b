#!/usr/bin/env bash
# The console's committed build (ui/dist/, embedded in the binary) must be
# what its sources build: rebuilds it from ui/ with the lockfile's exact
# packages (npm ci) and fails when ui/dist/ then differs from the commit.
# `make ui` rebuilds it for a commit. Needs node 20+ and npm; on a machine
# without them there is nothing to compare with, which it says.
set -euo pipefail
cd "$(dirname "$0")/../ui"
if ! command -v npm >/dev/null; then
  echo "ui-check: node/npm not installed here; the committed ui/dist/ was not rebuilt" >&2
  exit 0
fi
before=$(sha256sum dist/index.html dist/app.js dist/app.css)
npm ci --no-audit --no-fund --loglevel=error >/dev/null
npm run --silent build >/dev/null
after=$(sha256sum dist/index.html dist/app.js dist/app.css)
if [ "$before" != "$after" ]; then
  echo "ui-check: ui/dist/ is not what ui/ builds: run \`make ui\` and commit ui/dist/" >&2
  diff <(echo "$before") <(echo "$after") >&2 || true
  exit 1
fi
echo "ui-check: ui/dist/ is reproduced byte for byte from ui/"
