#!/usr/bin/env bash
# All GPU measurements of docs/performance.md in one call (budget: under 8 minutes on one H100).
#   bash benchmarks/gpu.sh [OUT_DIR]      (default: $OUT, else bench-gpu/)
# Writes one JSON per measurement plus summary.json: ViT-B/16, ViT-L/16, ViT-H/14 at 224 px,
# batch 128 per GPU, bf16, eager and torch.compile; then the largest ViT-H/14 batch that fits,
# with and without activation checkpointing.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-bench-gpu}}"
mkdir -p "$out"
jk="${JEPAKIT:-.venv/bin/jepakit}"
[ -x "$jk" ] || jk=jepakit
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/gpu.txt" 2>&1

bench() {  # name, recipe, extra args...
  local name=$1 recipe=$2; shift 2
  timeout 150 "$jk" bench "$recipe" train.batch_size=128 train.precision=bf16 --steps 15 --warmup 5 \
    --json "$out/$name.json" "$@" > "$out/$name.log" 2>&1 || echo "$name failed: see $name.log"
}
for model in vitb16 vitl16 vith14; do
  bench "${model}_eager" "recipes/ijepa_${model}.yaml"
  bench "${model}_compiled" "recipes/ijepa_${model}.yaml" --compile
done

# Largest ViT-H/14 batch per GPU (doubling, then stop at the first out-of-memory).
for ckpt in false true; do
  for b in 128 192 256 384 512 768 1024; do
    if timeout 120 "$jk" bench recipes/ijepa_vith14.yaml train.batch_size=$b train.precision=bf16 \
        encoder.params.activation_checkpointing=$ckpt --steps 3 --warmup 1 \
        --json "$out/vith14_b${b}_ckpt_${ckpt}.json" > "$out/vith14_b${b}_ckpt_${ckpt}.log" 2>&1; then
      echo "$b" > "$out/vith14_max_batch_ckpt_${ckpt}.txt"
    else
      break
    fi
  done
done

python3 - "$out" <<'PY'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
rows = {p.stem: json.loads(p.read_text()) for p in sorted(out.glob("*.json")) if p.stem != "summary"}
keep = ("median_step_s", "images_per_s", "fraction_of_limit", "peak_memory_bytes", "batch_size",
        "compiled", "device", "model_flops_per_image")
summary = {name: {k: r.get(k) for k in keep} for name, r in rows.items()}
for f in out.glob("vith14_max_batch_*.txt"):
    summary[f.stem] = int(f.read_text())
(out / "summary.json").write_text(json.dumps(summary, indent=2))
print(json.dumps(summary, indent=2))
PY
