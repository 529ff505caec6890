#!/bin/bash
# The checks that need an NVIDIA GPU, as one run on a lent GPU machine (a bare image with a CUDA
# build of torch, nvidia-ml-py, psutil, httpx; nothing can be fetched there). Beforehand, here:
# wheels for Python 3.12 of what that image lacks (orjson, and trackio with its needs) in .whl/:
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux_2_17_x86_64 -d .whl trackio==0.43.0 orjson \
#     brotli gradio-client python-multipart starlette uvicorn
# Then, there: bash scripts/device_checks.sh  (results in $OUT, or ./device-out; the last ones
# are kept in bench/saved/)
#  1. scripts/gpu_sampler_check.py: the system sampler's GPU rows while the GPU multiplies;
#  2. scripts/gpu_histogram_check.py: histograms of CUDA tensors, counts, time, end to end;
#  3. bench/artifacts.py --device cuda: step time while 200 MB checkpoints upload, GPU steps,
#     a) the server on cores of its own (as on another machine), b) sharing every core.
set -u
OUT=${OUT:-$PWD/device-out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 TRACKIO_SHOW_BIN=/tmp/site/bin/trackio
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
echo "cores: $(nproc); python: $(python3 -V); torch: $(python3 -c 'import torch; print(torch.__version__)')"
timeout 90 python3 scripts/gpu_sampler_check.py --seconds 20 >"$OUT/gpu_sampler.json"
echo "== gpu_sampler_check rc=$?"
python3 -c "import json; d=json.load(open('$OUT/gpu_sampler.json')); d.pop('first_and_last_rows', None); print(json.dumps(d)[:3000])"
timeout 150 python3 scripts/gpu_histogram_check.py >"$OUT/gpu_histogram.json"
echo "== gpu_histogram_check rc=$?"
cat "$OUT/gpu_histogram.json"; echo
n=$(nproc); half=$((n / 2))
timeout 200 python3 bench/artifacts.py --device cuda --server-cpus "$half-$((n - 1))" \
  --client-cpus "0-$((half - 1))" --json "$OUT/artifacts_gpu_apart.json" >"$OUT/artifacts_gpu_apart.txt" 2>&1
echo "== artifacts bench, server on cores of its own, rc=$?"; cat "$OUT/artifacts_gpu_apart.txt"
timeout 200 python3 bench/artifacts.py --device cuda --big-mb 200 \
  --json "$OUT/artifacts_gpu_shared.json" >"$OUT/artifacts_gpu_shared.txt" 2>&1
echo "== artifacts bench, every core shared, rc=$?"; cat "$OUT/artifacts_gpu_shared.txt"
