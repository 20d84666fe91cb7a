#!/usr/bin/env bash
# All GPU measurements of docs/performance.md in one call, most important first, each
# started only while the time budget allows (BUDGET_S, default 480 s).
#   bash benchmarks/gpu.sh [OUT_DIR]      (default: $OUT, else bench-gpu/)
# 1. smoke test (tiny recipe on the GPU; stops here if it fails) and a measured bf16 matmul;
# 2. ViT-H/14 at 224 px, batch 128, bf16, eager and compiled (1 length bucket), then
#    L/16 and B/16 eager;
# 3. the largest ViT-H/14 batch that fits, without and with activation checkpointing;
# 4. ViT-B/16 and ViT-H/14 compiled (train.compile's path: one graph per mask-length
#    bucket; the JSON has the graphs built per module and the compile time);
# 5. how many loader workers feed one GPU (JPEG shards, 224 px crops, batch 128);
# 6. V-JEPA 2 ViT-L/16, 16 x 256 px clips, batch 24, with and without activation checkpointing.
# ONLY="smoke vith14_compiled_b1 ..." runs just the named measurements.
# One JSON per measurement plus summary.json.
# DRY=1 runs the same sequence on the CPU with one-block models, a few images, fp32 and
# the eager compile backend: a check that the script works end to end (minutes).
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-bench-gpu}}"
mkdir -p "$out"
deadline=$(( $(date +%s) + ${BUDGET_S:-480} ))
left() { echo $(( deadline - $(date +%s) )); }
if [ -x .venv/bin/jepakit ]; then jk=.venv/bin/jepakit; py=.venv/bin/python
else jk=jepakit; py=python3; fi
jk="${JEPAKIT:-$jk}"
export PYTHONUNBUFFERED=1
dry=(); batch=128; prec=bf16; steps=(--steps 12 --warmup 4); sizes=("192 256 384 512" "512 768 1024 1536")
if [ "${DRY:-0}" = 1 ]; then
  dry=(train.device=cpu encoder.params.size=tiny encoder.params.depth=1 encoder.params.image_size=112
       predictor.params.depth=1 predictor.params.embed_dim=64 predictor.params.num_heads=4)
  batch=8; prec=fp32; steps=(--steps 2 --warmup 1); sizes=("8 16" "16 32")
  export JEPAKIT_COMPILE_BACKEND=${JEPAKIT_COMPILE_BACKEND:-eager}
fi

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv > "$out/gpu.txt" 2>&1
DRY="${DRY:-0}" timeout 120 "$py" - > "$out/device.json" 2> "$out/device.log" <<'PY'
import json, os, time, torch
if os.environ["DRY"] == "1":
    print(json.dumps({"dry_run": True, "torch": torch.__version__}))
    raise SystemExit
d = torch.device("cuda")
a, b = (torch.randn(8192, 8192, device=d, dtype=torch.bfloat16) for _ in range(2))
for _ in range(3):
    a @ b
torch.cuda.synchronize()
times = []
for _ in range(10):
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record(); a @ b; e.record(); torch.cuda.synchronize()
    times.append(s.elapsed_time(e) / 1e3)
times.sort()
print(json.dumps({"gpu": torch.cuda.get_device_name(d), "torch": torch.__version__,
                  "cuda": torch.version.cuda,
                  "bf16_matmul_8192_tflops_median": 2 * 8192**3 / times[5] / 1e12}))
PY
cat "$out/device.json"

# run NAME NEED_S CAP_S RECIPE ARGS...: one bench, if NEED_S seconds are left.
run() {
  local name=$1 need=$2 cap=$3 recipe=$4; shift 4
  if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]]; then return 3; fi  # not chosen
  local l; l=$(left)
  if [ "$l" -lt "$need" ]; then echo "skip $name ($l s left)"; return 2; fi
  [ "$cap" -gt "$l" ] && cap=$l
  local t0; t0=$(date +%s)
  timeout "$cap" "$jk" bench "$recipe" "${dry[@]}" "$@" --json "$out/$name.json" > "$out/$name.log" 2>&1
  local rc=$?
  echo "$name: exit $rc in $(( $(date +%s) - t0 )) s: $(grep -E 'median step|MFU|fraction|compiled' "$out/$name.log" | tr -s ' ' | tr '\n' ';')"
  return $rc
}

run smoke 0 120 recipes/ijepa_tiny.yaml train.precision=$prec --steps 2 --warmup 1
rc=$?
if [ $rc -ne 0 ] && [ $rc -ne 3 ]; then tail -30 "$out/smoke.log"; exit 1; fi

b128=(train.batch_size=$batch train.precision=$prec "${steps[@]}")
run vith14_eager 60 150 recipes/ijepa_vith14.yaml "${b128[@]}"
# The headline of docs/performance.md (ViT-H/14 MFU) compiled, right after its eager run.
run vith14_compiled_b1 120 240 recipes/ijepa_vith14.yaml masker.params.length_buckets=1 "${b128[@]}" --compile
run vitl16_eager 45 120 recipes/ijepa_vitl16.yaml "${b128[@]}"
run vitb16_eager 40 100 recipes/ijepa_vitb16.yaml "${b128[@]}"

# Compiled, one graph per mask shape: 1 length bucket (3 graphs: encoder, predictor,
# target encoder), then 2 (up to 2 + 4 + 1). The JSON's "compilations" counts them.
run vitb16_compiled_b1 90 180 recipes/ijepa_vitb16.yaml masker.params.length_buckets=1 "${b128[@]}" --compile
run vitb16_compiled_b2 150 240 recipes/ijepa_vitb16.yaml masker.params.length_buckets=2 "${b128[@]}" --compile

# Video: V-JEPA 2 ViT-L/16 on 16 frames of 256 px (8x16x16 tokens), the official per-GPU
# batch of 24, bf16, with and without activation checkpointing (the recipe has it on).
vid=(train.batch_size=24 train.precision=$prec "${steps[@]}")
[ "${DRY:-0}" = 1 ] && vid=(train.device=cpu train.batch_size=2 train.precision=fp32 encoder.params.size=tiny
  encoder.params.depth=1 encoder.params.image_size=64 encoder.params.num_frames=4 predictor.params.depth=1 "${steps[@]}")
run vjepa2_vitl16_ckpt 60 150 recipes/vjepa/vjepa2_vitl16_256px_16f.yaml "${vid[@]}"
run vjepa2_vitl16 60 150 recipes/vjepa/vjepa2_vitl16_256px_16f.yaml "${vid[@]}" \
  encoder.params.activation_checkpointing=false predictor.params.activation_checkpointing=false
# Compiled video: 1 length bucket per configuration (2 context lengths, 2 predictor shapes).
run vjepa2_vitl16_compiled_b1 150 240 recipes/vjepa/vjepa2_vitl16_256px_16f.yaml "${vid[@]}" \
  encoder.params.activation_checkpointing=false predictor.params.activation_checkpointing=false \
  masker.params.length_buckets=1 --compile

# Largest ViT-H/14 batch per GPU: grow until the first failure (out of memory).
for ckpt in false true; do
  list=${sizes[0]}; [ "$ckpt" = true ] && list=${sizes[1]}
  for b in $list; do
    run "vith14_b${b}_ckpt_${ckpt}" 50 100 recipes/ijepa_vith14.yaml train.batch_size="$b" \
      train.precision=$prec encoder.params.activation_checkpointing=$ckpt --steps 3 --warmup 2
    rc=$?
    [ $rc -eq 0 ] || break  # out of memory (or not chosen by ONLY)
    echo "$b" > "$out/vith14_max_batch_ckpt_${ckpt}.txt"
  done
done

if [ "$(left)" -gt 60 ]; then
  data=(--jpegs 4096 --workers 1 2 4 8 --batch-size 128 --batches 12)
  [ "${DRY:-0}" = 1 ] && data=(--jpegs 64 --workers 1 2 --batch-size 8 --batches 2)
  timeout $(( $(left) - 10 )) "$py" benchmarks/data_throughput.py --source jpeg "${data[@]}" \
    --json "$out/data_workers.json" > "$out/data_workers.log" 2>&1; tail -8 "$out/data_workers.log"
fi

"$py" - "$out" <<'PY'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
keep = ("median_step_s", "images_per_s", "fraction_of_limit", "peak_memory_bytes", "batch_size",
        "compiled", "compilations", "compile_s", "mask_shapes", "device", "model_flops_per_image",
        "achieved_flops_per_s")
summary = {}
for p in sorted(out.glob("*.json")):
    if p.stem in ("summary", "device", "data_workers"):
        continue
    r = json.loads(p.read_text())
    summary[p.stem] = {k: r.get(k) for k in keep}
for f in out.glob("vith14_max_batch_*.txt"):
    summary[f.stem] = int(f.read_text())
(out / "summary.json").write_text(json.dumps(summary, indent=1))
print(f"{'run':<24}{'step s':>8}{'img/s':>8}{'MFU':>7}{'GiB':>7}  graphs (compile s)")
for name, r in summary.items():
    if isinstance(r, dict) and r["median_step_s"]:
        graphs = "" if not r["compiled"] else \
            f"  {sum(r['compilations'].values())} {r['compilations']} ({r['compile_s']:.0f})"
        print(f"{name:<24}{r['median_step_s']:>8.3f}{r['images_per_s']:>8.0f}"
              f"{(r['fraction_of_limit'] or 0):>7.1%}{r['peak_memory_bytes'] / 2**30:>7.1f}{graphs}")
    else:
        print(name, r)
PY
