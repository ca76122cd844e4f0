# test/lmeval.test.ts runs lm-evaluation-harness (PyPI lm_eval, its local-completions model) against
# `blockserve serve`; it finds this venv through BLOCKSERVE_LMEVAL_PYTHON. Sourced by .ci/run as root under
# `set -euo pipefail`; idempotent (skips when lm_eval already imports); pip's log is shown only on failure.
export BLOCKSERVE_LMEVAL_PYTHON=/opt/blockserve-lmeval/bin/python
if ! "$BLOCKSERVE_LMEVAL_PYTHON" -c 'import lm_eval.models.openai_completions, tenacity' >/dev/null 2>&1; then
  if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 python3-venv >/dev/null
  fi
  rm -rf /opt/blockserve-lmeval
  python3 -m venv /opt/blockserve-lmeval
  # torch's CPU wheel: from the configured sources (a wheel cache) when it is there, else PyTorch's CPU index.
  lmeval_pip=(/opt/blockserve-lmeval/bin/pip install -q --disable-pip-version-check)
  if ! { "${lmeval_pip[@]}" 'torch==2.13.0+cpu' >/tmp/blockserve-lmeval-pip.log 2>&1 \
        || "${lmeval_pip[@]}" --index-url https://download.pytorch.org/whl/cpu 'torch==2.13.0+cpu' >>/tmp/blockserve-lmeval-pip.log 2>&1; } \
      || ! "${lmeval_pip[@]}" -r tools/lmeval/requirements.txt >>/tmp/blockserve-lmeval-pip.log 2>&1; then
    cat /tmp/blockserve-lmeval-pip.log >&2
    exit 1
  fi
fi
