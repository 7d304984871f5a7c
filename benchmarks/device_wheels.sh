#!/usr/bin/env bash
# Fetch (here, where PyPI is reachable) the pure-Python wheels that benchmarks/device_check.py needs
# on a lent GPU machine whose image lacks them, into .whl/ (ignored by git, carried by the device tool).
# On the machine: python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
#   --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> "$(git rev-parse --git-path info/exclude)"
python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .whl ml_collections==1.1.0 pytest==9.2.0 pluggy==1.7.0 iniconfig==2.3.1
ls -la .whl
