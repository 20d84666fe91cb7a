#!/usr/bin/env bash
# Where the compiled ViT-H/14 I-JEPA step spends its GPU time, and what a tuned compile
# buys (issue 20). One call, most important first, each started only while BUDGET_S allows.
#   BUDGET_S=300 bash benchmarks/gpu_profile.sh [OUT_DIR]
# 1. jepakit bench, compiled, 1 length bucket, batch 128 (per-step and back-to-back MFU);
# 2. benchmarks/step_profile.py on the same compiled step: device time by kernel category;
# 3. the bench again with inductor's GEMM autotuning (TORCHINDUCTOR_MAX_AUTOTUNE_GEMM=1).
# DRY=1 runs the same sequence on the CPU with a one-block model (a check of the script).
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-bench-gpu}}"
mkdir -p "$out"
deadline=$(( $(date +%s) + ${BUDGET_S:-300} ))
left() { echo $(( deadline - $(date +%s) )); }
if [ -x .venv/bin/jepakit ]; then jk=.venv/bin/jepakit; py=.venv/bin/python; else jk=jepakit; py=python3; fi
export PYTHONUNBUFFERED=1
recipe=${RECIPE:-recipes/ijepa_vith14.yaml}
args=(train.batch_size=${BATCH:-128} train.precision=bf16 masker.params.length_buckets=1)
steps=(--steps 8 --warmup 3); psteps=(--steps 3)
if [ "${DRY:-0}" = 1 ]; then
  args=(train.device=cpu train.batch_size=8 train.precision=fp32 encoder.params.size=tiny
        encoder.params.depth=1 encoder.params.image_size=112 predictor.params.depth=1
        predictor.params.embed_dim=64 predictor.params.num_heads=4 masker.params.length_buckets=1)
  steps=(--steps 2 --warmup 1); psteps=(--steps 1)
  export JEPAKIT_COMPILE_BACKEND=${JEPAKIT_COMPILE_BACKEND:-eager}
fi
nvidia-smi --query-gpu=name,driver_version --format=csv > "$out/gpu.txt" 2>&1
"$py" -c "import torch; print(torch.__version__, torch.version.cuda)" >> "$out/gpu.txt"

step() {  # step NAME NEED_S COMMAND...: run if NEED_S seconds are left, capped at what is left
  local name=$1 need=$2; shift 2
  local l; l=$(left)
  if [ "$l" -lt "$need" ]; then echo "skip $name ($l s left)"; return 2; fi
  local t0; t0=$(date +%s)
  timeout "$l" "$@" > "$out/$name.log" 2>&1
  local rc=$?
  echo "$name: exit $rc in $(( $(date +%s) - t0 )) s"
  grep -E "median step|back to back|fraction|compiled " "$out/$name.log"
  return $rc
}
step compiled 90 "$jk" bench "$recipe" "${args[@]}" "${steps[@]}" --compile --json "$out/compiled.json"
step profile 60 "$py" benchmarks/step_profile.py "$recipe" "${args[@]}" "${psteps[@]}" --compile \
  --json "$out/profile.json"
sed -n '/device time by category/,$p' "$out/profile.log" | head -9
TORCHINDUCTOR_MAX_AUTOTUNE_GEMM=1 step autotune 120 "$jk" bench "$recipe" "${args[@]}" "${steps[@]}" \
  --compile --json "$out/autotune.json"
exit 0
