#!/usr/bin/env bash
# The GPU measurement in one command (docs/BENCHMARKS.md, "GPU"): per method at paper scale with random
# weights, bf16 training and inference images/s, peak memory, MFU, loader images/s with 8 workers, and
# DDP scaling over all GPUs. Under 10 minutes on one A100/H100. Extra arguments go to gpu_bench.py:
#   bash benchmarks/gpu.sh                      # all methods, bf16
#   bash benchmarks/gpu.sh --compile            # the same through torch.compile (compile time reported)
#   bash benchmarks/gpu.sh --dry-run --methods efficientnet_b4 --steps 2   # the script on a CPU, tiny models
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
export WANDB_MODE="${WANDB_MODE:-disabled}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no nvidia-smi"
exec "${PYTHON:-python3}" benchmarks/gpu_bench.py "$@"
