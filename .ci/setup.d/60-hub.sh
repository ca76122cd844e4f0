# engine/hub/: the cache-interop test runs Python's huggingface_hub (PyPI) against the test's local fake
# Hub, to prove both share one cache layout. Its own venv, pinned to the version the test was written
# against. Sourced by .ci/run as root under `set -euo pipefail`; idempotent: skips when installed.
if [ ! -x /opt/blockserve-hub-venv/bin/python ] || ! /opt/blockserve-hub-venv/bin/python -c 'import huggingface_hub' >/dev/null 2>&1; then
  if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 python3-venv >/dev/null
  fi
  python3 -m venv /opt/blockserve-hub-venv
  if ! /opt/blockserve-hub-venv/bin/pip install -q --disable-pip-version-check 'huggingface_hub==0.36.2' >/tmp/blockserve-hub-venv-pip.log 2>&1; then
    cat /tmp/blockserve-hub-venv-pip.log >&2
    exit 1
  fi
fi
