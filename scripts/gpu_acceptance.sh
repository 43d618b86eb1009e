#!/usr/bin/env bash
# GPU acceptance of the runtime (issue 4), run on a machine with an NVIDIA GPU from the
# repository root. The binaries are built elsewhere (no Rust toolchain needed here) and carried
# in .gpu-bin/ (git-ignored):
#
#   scripts/gpu_acceptance.sh --collect [REFDIR]   # builds them (release) and strips them into .gpu-bin/
#   scripts/gpu_acceptance.sh                                # on the GPU machine
#   ONLY="kernels model" PEERS_ARGS=--quick scripts/gpu_acceptance.sh   # some steps only
#
# REFDIR: logits of CPU reference runs of the ~1B hybrid's first N layers, made on the build
# machine, as REFDIR/hybrid-1b-L{N}.safetensors (N = 24: about 2 minutes and 9 GB of memory; the
# weights are the seed-0 random ones; a spec of N layers is hybrid-1b.yaml with num_blocks: N
# and the pattern cut to N):
#   modelc run hybrid-1b-L{N}.yaml --device cpu --precision f64 --chunk 0 \
#     --prompt-ids 1,17,300,4000,25,9999,31999,7,123,2048,5,77,31000,640,8,15 \
#     --max-new-tokens 4 --logits-out REFDIR/hybrid-1b-L{N}.safetensors
#
# Steps (each logs to $OUT/<step>.log and prints a filtered excerpt; a table of exit codes last):
#   model    every spec/placement vs the CPU reference, chunked prefill, determinism, errors, CLI
#   memcheck compute-sanitizer memcheck on `modelc run --device cuda` of the two hybrid specs
#   cmp      two `modelc run --logits-out` runs of each compared byte for byte
#   1b       the ~1B hybrid: accuracy vs REF, determinism, timings
#   cli1b    `modelc run specs/hybrid-1b.yaml --device cuda`, 512-token prompt + 64 decode steps
#   kernels  the kernel-template tests (gpu_kernels), rerun against the current templates
#   kbench   the kernel benchmarks (gpu_kernels --ignored bench_kernels, then bench_kda_step)
#   glue     every glue kernel of the codegen and tiny specs vs the reference (codegen_gpu)
#   bench    `modelc bench specs/hybrid-1b.yaml` (warm prefill 512/4096, decode batch 1/8), with
#            DECODE_TRIAL=LABEL=ASSIGNMENTS a decode trial in turn with the default
#            (scripts/decode_trials.sh), and the cli_bench tests
#   peers    scripts/bench_peers.py: copy/GEMM ceilings, SDPA, fla-core (wheels in .whl/, if carried)
#   modelpeer scripts/bench_model_peer.py: the HF-style eager + fla forward of hybrid-1b (the
#            whole-model peer of `bench`; needs the fla-core wheel)
#   prefill  the Hopper attention prefill (the cp.async and TMA forms; with MODELC_BENCH_TRIALS=1
#            also the L2-section and cache-policy trials) next to SDPA, two rounds in one step
#   delta    the chunked delta rule at issue 8's shapes (B1 T4096 H32, B1 T8192 H32, B8 T2048 H16)
#            next to fla's chunk_kda / chunk_gated_delta_rule at the same shapes, in one step (fla's
#            times move between calls, so a ratio needs both sides from the same call), with fla's
#            time per kernel (--fla-profile) to compare pass by pass
#   scanout  the trial of the scan with the output pass in programs (MODELC_DELTA_SCAN_OUT=1):
#            its kernel test, the models against the reference with it, both under memcheck
#   scanbench its kernel rows next to fla's at B1 T8192 H32 and B8 T2048 H16 (there in waves), and at
#            hybrid-1b's B1 T4096 H16 (which width suits it)
#   scanmodel hybrid-1b's prefill without it, with it at the scan's width (1) and at 32 columns
#            (each step fits one device call: ONLY=scanout, then ONLY=scanbench, ONLY=scanmodel)
#   quickfix, quickrows, quickmodel  the same trial in one call (limits 560 s together, for a
#            lease too short for the three steps above): the variants test at 32 columns and
#            memcheck of `modelc run` with the setting at 1 and 32; KDA's rows and fla's at B1
#            T8192 H32 and B8 T2048 H16; hybrid-1b's prefill off, at 1 and at 32, once each
#            (ONLY="quickfix quickrows quickmodel")
#   flushprefill the Hopper attention prefill forms and SDPA, each also timed one call at a time
#            after a 128 MiB write elsewhere (the L2 holds none of their data, as in a model
#            where GEMMs run between two attention calls), two rounds
#   attnfused the attention decode with the combine in its last block (MODELC_ATTN_DECODE_FUSED=1;
#            2: early loads too; 3: and RoPE folded in): its kernel tests, the models against the
#            reference at 3, memcheck, and hybrid-1b's decode at batch 1 and 8 off, at 1, 2 and 3, twice
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN=.gpu-bin

if [ "${1:-}" = "--collect" ]; then
    set -e
    mkdir -p "$BIN"
    # Cargo names the test executables it built for this tree (a shared CARGO_TARGET_DIR holds
    # other trees' builds too, so the newest file is not necessarily ours).
    cargo build --release -p modelc --bin modelc
    cargo test --release -p modelc --test gpu_model --test gpu_kernels --test codegen_gpu --test cli_bench \
        --no-run --message-format=json |
        python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable"):
        print(m["target"]["name"], m["executable"])' |
        while read -r name exe; do cp "$exe" "$BIN/$name"; done
    cp "${CARGO_TARGET_DIR:-target}/release/modelc" "$BIN/modelc"
    strip "$BIN/modelc" "$BIN/gpu_model" "$BIN/gpu_kernels" "$BIN/codegen_gpu" "$BIN/cli_bench"
    if [ -n "${2:-}" ]; then mkdir -p "$BIN/ref1b" && cp "$2"/hybrid-1b-L*.safetensors "$BIN/ref1b/"; fi
    ls -la "$BIN"
    exit 0
fi

OUT=${OUT:-/tmp/modelc-gpu-acceptance}
mkdir -p "$OUT"
date -u
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv
find_one() { find /usr/local/cuda/ /usr/local /usr/lib /opt -name "$1" 2>/dev/null | head -1; }
NV=$(find_one 'libnvrtc.so.13')
BL=$(find_one 'libcublasLt.so.13')
if [ -f /usr/local/cuda/include/cuda_bf16.h ]; then INC=/usr/local/cuda/include; else INC=$(dirname "$(find_one cuda_bf16.h)"); fi
echo "nvrtc=$NV cublasLt=$BL include=$INC"
export LD_LIBRARY_PATH=$(dirname "$NV"):$(dirname "$BL"):${LD_LIBRARY_PATH:-}
export MODELC_NVRTC_LIB=$NV MODELC_CUDA_INCLUDE=$INC MODELC_REQUIRE_GPU=1
export MODELC_CACHE_DIR=/tmp/modelc-cache MODELC_REPO_ROOT=$PWD MODELC_BIN=$PWD/$BIN/modelc
declare -A RC

step() { # name timeout command...
    local name=$1 limit=$2
    shift 2
    # ONLY="kernels model ...": run just these steps (a re-check on a short lease).
    if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]]; then return; fi
    local t0=$SECONDS
    timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
    RC[$name]=$?
    echo "== $name: rc=${RC[$name]} in $((SECONDS - t0)) s"
}

export BIN OUT PEERS_ARGS
step model 200 "$BIN/gpu_model" --test-threads=1 --nocapture
grep -E "^test |test result|panicked|relative RMS|^  [a-z0-9-]+\[|^ran|^skipped" "$OUT/model.log" | head -60

step kernels 540 "$BIN/gpu_kernels" --test-threads=1
grep -E "^test |test result|panicked" "$OUT/kernels.log" | head -20

kbench_runs() {
    "$BIN/gpu_kernels" --ignored bench_kernels --nocapture || return 1
    # The KDA step alone: single block, and the cluster form with either exchange.
    "$BIN/gpu_kernels" --ignored bench_kda_step --nocapture
}
export -f kbench_runs
step kbench 300 bash -c kbench_runs
grep -E "^\|" "$OUT/kbench.log" | head -40

if [ -d "$BIN/ref1b" ]; then export MODELC_HYBRID_1B_REFS=$PWD/$BIN/ref1b; fi
step 1b 110 "$BIN/gpu_model" --ignored hybrid_1b_on_the_gpu --nocapture
grep -E "^test |test result|panicked|1B|hybrid-1b|^  " "$OUT/1b.log" | head -40

bench_runs() {
    "$BIN/modelc" bench specs/hybrid-1b.yaml --prefill-tokens 512,4096 --decode-batch 1,8 || return 1
    # A decode trial in turn with the default, when one is named: DECODE_TRIAL=LABEL=ASSIGNMENTS.
    if [ -n "${DECODE_TRIAL:-}" ]; then
        echo "-- decode trial: $DECODE_TRIAL"
        scripts/decode_trials.sh "$DECODE_TRIAL" || return 1
    fi
    "$BIN/cli_bench" --test-threads=1
}
export -f bench_runs
step bench 300 bash -c bench_runs
grep -E "^\||^-- |modelc bench|^test |test result|panicked|error" "$OUT/bench.log" | head -48

# The fla-core wheel (and any other carried in .whl/) for the Python peers.
fla_wheels() {
    if ls .whl/*.whl > /dev/null 2>&1; then
        python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
    fi
}
peer_runs() {
    fla_wheels
    PYTHONUNBUFFERED=1 python3 scripts/bench_peers.py ${PEERS_ARGS:-}
}
export -f fla_wheels peer_runs
step peers 150 bash -c peer_runs
grep -E "^\||device:" "$OUT/peers.log" | head -24

model_peer_runs() {
    fla_wheels
    PYTHONUNBUFFERED=1 python3 scripts/bench_model_peer.py --tokens 512,4096
}
export -f model_peer_runs
step modelpeer 180 bash -c model_peer_runs
grep -E "^\||device:|Error" "$OUT/modelpeer.log" | head -12

prefill_runs() {
    for _ in 1 2; do
        MODELC_BENCH_FILTER="lazy rescale|L2 section" "$BIN/gpu_kernels" --ignored bench_attention_prefill_only \
            --nocapture || return 1
        (cd scripts && PYTHONUNBUFFERED=1 python3 bench_sdpa_prefill.py) || return 1
    done
}
export -f prefill_runs
step prefill 300 bash -c prefill_runs
grep -E "^\|" "$OUT/prefill.log" | head -48

delta_runs() {
    local f
    for f in "B1 T4096 H32" "B1 T8192 H32" "B8 T2048 H16"; do
        MODELC_BENCH_FILTER="$f" "$BIN/gpu_kernels" --ignored bench_delta_chunk_parallel --nocapture || return 1
    done
    fla_wheels
    PYTHONUNBUFFERED=1 python3 scripts/bench_peers.py --fla-only --fla-profile \
        --fla-shape=1,4096,32 --fla-shape=1,8192,32 --fla-shape=8,2048,16
}
export -f delta_runs
step delta 540 bash -c delta_runs
# the tables first (ours, then fla's eager and CUDA-graph rows), the prep forms (CpPrepVariant),
# then fla's time per kernel
grep -E "^\||device:" "$OUT/delta.log" | grep -v "prep=" | head -40
grep -E "prep=" "$OUT/delta.log" | head -32
grep -E "^# " "$OUT/delta.log" | head -60

PROMPT=$(seq -s, 1 37)
HYBRIDS="specs/tiny-hybrid.yaml tests/golden/specs/codegen-hybrid.yaml"
memcheck_runs() {
    local rc=0
    for s in $HYBRIDS; do
        echo "-- $s"
        compute-sanitizer --tool memcheck --error-exitcode 9 \
            "$BIN/modelc" run "$s" --device cuda --prompt-ids "$PROMPT" --max-new-tokens 6 || rc=1
    done
    return $rc
}
cmp_runs() {
    for s in $HYBRIDS; do
        for i in 1 2; do
            "$BIN/modelc" run "$s" --device cuda --seed 4 --prompt-ids "$PROMPT" \
                --max-new-tokens 8 --logits-out "$OUT/run$i.safetensors" --force || return 1
        done
        cmp "$OUT/run1.safetensors" "$OUT/run2.safetensors" && echo "$s: two runs, logits files identical" || return 1
    done
}
export BIN OUT PROMPT HYBRIDS
export -f memcheck_runs cmp_runs
step memcheck 150 bash -c memcheck_runs
grep -E "^-- |ERROR SUMMARY|Invalid|cuda \(|continuation|error" "$OUT/memcheck.log" | head -20

step cmp 60 bash -c cmp_runs
grep -E "identical|differ|cuda \(|error" "$OUT/cmp.log"
rm -f "$OUT/run1.safetensors" "$OUT/run2.safetensors"

step cli1b 60 "$BIN/modelc" run specs/hybrid-1b.yaml --device cuda --prompt-ids "$(seq -s, 1 512)" --max-new-tokens 65
grep -E "note|cuda \(|error" "$OUT/cli1b.log"

step glue 90 "$BIN/codegen_gpu" --test-threads=1 --nocapture
grep -E "^test |test result|panicked|glue kernels" "$OUT/glue.log" | head -20

# The trial of the scan with the output pass in programs (MODELC_DELTA_SCAN_OUT=1, read when a
# spec is compiled). scanout: its kernel test with both exchanges, the models against the
# reference with it (at the scan's width and at 32 columns), both under memcheck. scanbench: the
# kernel rows next to fla's at B1 T8192 H32 and B8 T2048 H16. scanmodel: hybrid-1b's prefill
# without it and with it (1, 32) in turn.
scanout_runs() {
    "$BIN/gpu_kernels" --exact delta::delta_rule_scan_out_matches_reference || return 1
    MODELC_DELTA_SCAN_OUT=1 "$BIN/gpu_model" --test-threads=1 || return 1
    MODELC_DELTA_SCAN_OUT=32 "$BIN/gpu_model" --test-threads=1 || return 1
    compute-sanitizer --tool memcheck --error-exitcode 9 \
        "$BIN/gpu_kernels" --exact delta::delta_rule_scan_out_matches_reference || return 1
    MODELC_DELTA_SCAN_OUT=1 compute-sanitizer --tool memcheck --error-exitcode 9 \
        "$BIN/modelc" run specs/tiny-hybrid.yaml --device cuda --prompt-ids "$PROMPT" --max-new-tokens 6
}
scanbench_runs() {
    MODELC_BENCH_FILTER="B1 T8192 H32|B8 T2048 H16|B1 T4096 H16" "$BIN/gpu_kernels" --ignored bench_delta_chunk_parallel \
        --nocapture || return 1
    fla_wheels
    PYTHONUNBUFFERED=1 python3 scripts/bench_peers.py --fla-only --fla-shape=1,8192,32 --fla-shape=8,2048,16
}
scanmodel_runs() {
    for on in 0 1 32 0 1 32; do
        echo "-- MODELC_DELTA_SCAN_OUT=$on"
        MODELC_DELTA_SCAN_OUT=$on "$BIN/modelc" bench specs/hybrid-1b.yaml --prefill-tokens 4096 \
            --decode-batch 1 --decode-steps 8 --runs 7 || return 1
    done
}
export -f scanout_runs scanbench_runs scanmodel_runs
step scanout 400 bash -c scanout_runs
grep -E "^test result|panicked|ERROR SUMMARY|cuda \(|error" "$OUT/scanout.log" | head -20
step scanbench 540 bash -c scanbench_runs
grep -E "^\||device:|panicked|error" "$OUT/scanbench.log" | grep -v "prep=" | head -60
step scanmodel 420 bash -c scanmodel_runs
grep -E "^-- |prefill|decode|panicked|error" "$OUT/scanmodel.log" | head -60

# The same trial in one call (ONLY="quickfix quickrows quickmodel"), most telling first.
quickfix_runs() {
    MODELC_DELTA_SCAN_OUT=32 "$BIN/gpu_model" --exact launch_variants_and_their_fallbacks_match_the_reference || return 1
    local on
    for on in 1 32; do
        echo "-- memcheck, MODELC_DELTA_SCAN_OUT=$on"
        MODELC_DELTA_SCAN_OUT=$on compute-sanitizer --tool memcheck --error-exitcode 9 \
            "$BIN/modelc" run specs/tiny-hybrid.yaml --device cuda --prompt-ids "$PROMPT" --max-new-tokens 6 || return 1
    done
}
quickrows_runs() {
    MODELC_BENCH_FILTER="KDA+norm B1 T8192 H32|KDA+norm B8 T2048 H16" \
        "$BIN/gpu_kernels" --ignored bench_delta_chunk_parallel --nocapture || return 1
    fla_wheels
    PYTHONUNBUFFERED=1 python3 scripts/bench_peers.py --fla-only --fla-shape=1,8192,32 --fla-shape=8,2048,16
}
quickmodel_runs() {
    local on
    for on in 0 1 32; do
        echo "-- MODELC_DELTA_SCAN_OUT=$on"
        MODELC_DELTA_SCAN_OUT=$on "$BIN/modelc" bench specs/hybrid-1b.yaml --prefill-tokens 4096 \
            --decode-batch 1 --decode-steps 8 --runs 5 || return 1
    done
}
export -f quickfix_runs quickrows_runs quickmodel_runs
step quickfix 110 bash -c quickfix_runs
grep -E "^test result|panicked|^-- |ERROR SUMMARY|cuda \(|error" "$OUT/quickfix.log" 2>/dev/null | head -20
step quickrows 300 bash -c quickrows_runs
grep -E "^\||device:|panicked|error" "$OUT/quickrows.log" 2>/dev/null | grep -v "prep=" | head -60
step quickmodel 150 bash -c quickmodel_runs
grep -E "^-- |prefill|decode|panicked|error" "$OUT/quickmodel.log" 2>/dev/null | head -30

# The attention decode with the combine in its last block (MODELC_ATTN_DECODE_FUSED=1; 2 also
# loads the first tiles before the wait; 3 also folds RoPE in; read when a spec is compiled): the
# kernel tests and the variants test first, then the decode timed off and at 1, 2, 3 in turn,
# twice, then every model test at 3 and memcheck (the timings come back even if the lease ends
# during the last checks).
attnfused_runs() {
    "$BIN/gpu_kernels" --exact attention::attention_decode_matches_reference || return 1
    "$BIN/gpu_kernels" --exact attention::attention_decode_with_rope_matches_reference || return 1
    MODELC_ATTN_DECODE_FUSED=3 "$BIN/gpu_model" --exact launch_variants_and_their_fallbacks_match_the_reference || return 1
    local on
    for on in 0 1 2 3 0 1 2 3; do
        echo "-- MODELC_ATTN_DECODE_FUSED=$on"
        MODELC_ATTN_DECODE_FUSED=$on "$BIN/modelc" bench specs/hybrid-1b.yaml --prefill-tokens 128 \
            --decode-batch 1,8 --runs 3 || return 1
    done
    # The kernel rows at B8 past 4096 (the decode target's shape), the fused forms included,
    # next to SDPA's decode.
    "$BIN/gpu_kernels" --ignored bench_attention_decode_only --nocapture || return 1
    (cd scripts && PYTHONUNBUFFERED=1 python3 bench_sdpa_decode.py) || return 1
    # At 3 (early loads and RoPE too) every model test, since only the executor's dependent
    # launches let the kernel start before the one it follows ends.
    MODELC_ATTN_DECODE_FUSED=3 "$BIN/gpu_model" --test-threads=1 || return 1
    compute-sanitizer --tool memcheck --error-exitcode 9 \
        "$BIN/gpu_kernels" --exact attention::attention_decode_with_rope_matches_reference || return 1
    MODELC_ATTN_DECODE_FUSED=3 compute-sanitizer --tool memcheck --error-exitcode 9 \
        "$BIN/modelc" run specs/tiny-hybrid.yaml --device cuda --prompt-ids "$PROMPT" --max-new-tokens 6
}
export -f attnfused_runs
step attnfused 560 bash -c attnfused_runs
grep -E "^test result|panicked|ERROR SUMMARY|^-- |decode|^\||cuda \(|error" "$OUT/attnfused.log" 2>/dev/null | head -70

# The attention prefill after a flush, ours and SDPA's, in one call (back to back as well).
flushprefill_runs() {
    for _ in 1 2; do
        MODELC_BENCH_SINGLE=1 "$BIN/gpu_kernels" --ignored bench_attention_prefill_only --nocapture || return 1
        (cd scripts && PYTHONUNBUFFERED=1 python3 bench_sdpa_prefill.py --flush) || return 1
    done
}
export -f flushprefill_runs
step flushprefill 300 bash -c flushprefill_runs
grep -E "^\|" "$OUT/flushprefill.log" 2>/dev/null | head -60

echo "== summary (exit codes; 0 = pass)"
for s in model memcheck cmp 1b cli1b kernels kbench glue bench peers modelpeer prefill delta scanout scanbench scanmodel quickfix quickrows quickmodel attnfused flushprefill; do printf '%-9s %s\n' "$s" "${RC[$s]:-not run}"; done
