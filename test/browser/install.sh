#!/bin/sh
# Installs the browser test's npm dependency (playwright-core, exact version from package.json)
# into test/browser/node_modules. Idempotent: does nothing when that version is already there.
# No lockfile is written, and no browser is downloaded: the test drives Debian's chromium.
set -eu
cd "$(dirname "$0")"
want=$(node -p 'require("./package.json").dependencies["playwright-core"]')
have=$(node -p 'try { require("./node_modules/playwright-core/package.json").version } catch (e) { "" }')
if [ "$have" = "$want" ]; then
    echo "test/browser: playwright-core $have already installed"
    exit 0
fi
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-package-lock --no-audit --no-fund \
    --omit=dev --loglevel=error
have=$(node -p 'require("./node_modules/playwright-core/package.json").version')
[ "$have" = "$want" ] || { echo "test/browser: installed playwright-core $have, wanted $want" >&2; exit 1; }
echo "test/browser: playwright-core $have installed"
