# server/: the demo-page test drives Debian's chromium through playwright-core (no browser download),
# and the schema-fuzz test runs schemathesis (PyPI) from its own venv against /openapi.json.
# Sourced by .ci/run as root under `set -euo pipefail`; idempotent: each step skips when done.
if [ ! -x /usr/bin/chromium ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 chromium >/dev/null
fi
if [ ! -x /opt/blockserve-venv/bin/st ]; then
  if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 python3-venv >/dev/null
  fi
  python3 -m venv /opt/blockserve-venv
  # pip's output goes to a log that is shown only if the install fails.
  if ! /opt/blockserve-venv/bin/pip install -q --disable-pip-version-check 'schemathesis>=4,<5' >/tmp/blockserve-venv-pip.log 2>&1; then
    cat /tmp/blockserve-venv-pip.log >&2
    exit 1
  fi
fi
