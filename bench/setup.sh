#!/usr/bin/env bash
# Benchmark-only dependencies for bench/browser_latency.py (BertViz side by side). Idempotent.
#  - Python: requirements-bench.txt into .venv, --no-deps (every package pinned there; torch comes from requirements.txt)
#  - JavaScript: the three libraries BertViz loads from a CDN, into bench/.node/ (git-ignored), so it renders offline
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
"$PY" -m pip install -q --no-deps -r requirements-bench.txt
"$PY" -c "import bertviz, IPython"
mkdir -p bench/.node
if [ ! -f bench/.node/node_modules/d3/dist/d3.min.js ] || [ ! -f bench/.node/node_modules/jquery/dist/jquery.min.js ] \
   || [ ! -f bench/.node/node_modules/requirejs/require.js ]; then
  command -v npm >/dev/null || { echo "npm not found: apt-get install -y npm" >&2; exit 1; }
  npm install --prefix bench/.node --no-audit --no-fund --no-save d3@5.7.0 jquery@2.2.4 requirejs@2.3.6
fi
echo "benchmark dependencies ready: $PY bench/browser_latency.py"
