# loadtest/: the HTML report test opens the report in headless Chromium (playwright-core drives
# /usr/bin/chromium; no browser download). Sourced by .ci/run as root under `set -euo pipefail`;
# idempotent: skips when chromium is already installed.
if [ ! -x /usr/bin/chromium ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 chromium >/dev/null
fi
