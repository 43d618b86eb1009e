#!/usr/bin/env bash
# Conversion benchmark (not a test): `modelc convert` against `cp` of the same files on the same
# disk, and the converter's peak RSS. Results go in docs/PERFORMANCE.md ("Conversion").
#
#   scripts/bench_convert.sh [GB] [RUNS]
#
# Generates a Llama-style bf16 checkpoint of about GB gigabytes (default 2) in 1 GB shards under
# $BENCH_DIR (default /tmp/modelc-bench), then times, RUNS times each (default 3):
#   cp -r SRC DST                                   (the yardstick)
#   modelc convert SRC OUT -s passthrough.yaml      (pure passthrough: renames + sliding window)
#   modelc convert SRC OUT -s kil_every10.yaml      (9 of 10 layers passthrough, 1 in 10 KIL)
# with /usr/bin/time -v (wall time and maximum resident set size). Files are read once first so
# every run reads from the page cache; with SYNC=1 each timed command is followed by `sync`
# inside the timing. Builds use the debug profile (dependencies at opt-level 2).
set -euo pipefail

GB="${1:-2}"
RUNS="${2:-3}"
BENCH_DIR="${BENCH_DIR:-/tmp/modelc-bench}"
SYNC="${SYNC:-0}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

cargo build -q -p modelc --bin modelc --example bench_checkpoint
bin="$root/target/debug/modelc"
gen="$root/target/debug/examples/bench_checkpoint"

src="$BENCH_DIR/src-${GB}gb"
mkdir -p "$BENCH_DIR"
if [[ ! -f "$src/config.json" ]]; then
    "$gen" "$src" "$GB"
fi

cat > "$BENCH_DIR/passthrough.yaml" <<'YAML'
decoder:
  type: pattern
  pattern: [full, full, full, sliding]
  blocks:
    full: {mixer: {type: attention, init: transfer}}
    sliding: {mixer: {type: attention, init: transfer, window_size: 4096}}
YAML
cat > "$BENCH_DIR/kil_every10.yaml" <<'YAML'
decoder:
  type: pattern
  pattern: [attn, attn, attn, attn, attn, attn, attn, attn, attn, hybrid]
  blocks:
    attn: {mixer: {type: attention, init: transfer}}
    hybrid:
      mixer:
        type: stochastic
        main_mixer_name: attention
        mixers:
          attention: {type: attention, init: transfer}
          kda: {type: kda, init: transfer, convolution_layer: {kernel_size: 4}}
YAML

# Warm the page cache.
cat "$src"/*.safetensors > /dev/null

# Runs "$@" under /usr/bin/time -v; prints "SECONDS MAXRSS_KB".
timed() {
    local log="$BENCH_DIR/time.log"
    if [[ "$SYNC" == 1 ]]; then
        /usr/bin/time -v -o "$log" bash -c '"$@" > /dev/null && sync' _ "$@"
    else
        /usr/bin/time -v -o "$log" "$@" > /dev/null
    fi
    local wall rss
    wall="$(grep 'Elapsed (wall clock)' "$log" | awk '{print $NF}')"
    rss="$(grep 'Maximum resident set size' "$log" | awk '{print $NF}')"
    # h:mm:ss or m:ss.ss to seconds
    python3 -c "
p='$wall'.split(':'); s=0.0
for x in p: s=s*60+float(x)
print(f'{s:.3f} $rss')"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

bytes_in=$(cat "$src"/*.safetensors | wc -c)
echo "source: $src ($(ls "$src"/*.safetensors | wc -l) shards, $bytes_in bytes)"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM, $(df -h "$BENCH_DIR" | awk 'NR==2 {print $1}')"

# Interleaved (cp, passthrough, kil, cp, ...) so background load hits every variant alike.
names=(cp passthrough kil_every10)
for name in "${names[@]}"; do : > "$BENCH_DIR/$name.times"; done
for _ in $(seq "$RUNS"); do
    for name in "${names[@]}"; do
        out="$BENCH_DIR/out-$name"
        rm -rf "$out"
        if [[ "$name" == cp ]]; then
            r="$(timed cp -r "$src" "$out")"
        else
            r="$(timed "$bin" convert "$src" "$out" -s "$BENCH_DIR/$name.yaml")"
        fi
        echo "$r" >> "$BENCH_DIR/$name.times"
        cat "$out"/*.safetensors | wc -c > "$BENCH_DIR/$name.bytes"
        rm -rf "$out"
    done
done
declare -A secs best rss
for name in "${names[@]}"; do
    secs[$name]="$(awk '{print $1}' "$BENCH_DIR/$name.times" | median)"
    best[$name]="$(awk '{print $1}' "$BENCH_DIR/$name.times" | sort -n | head -1)"
    rss[$name]="$(awk '{print $2}' "$BENCH_DIR/$name.times" | sort -n | tail -1)"
done

printf '\n| run | median wall (s) | best (s) | output GB | GB/s (median) | vs cp (median) | vs cp (best) | peak RSS (MiB) |\n|---|---|---|---|---|---|---|---|\n'
for name in "${names[@]}"; do
    b=$(cat "$BENCH_DIR/$name.bytes")
    python3 -c "
s=${secs[$name]}; bs=${best[$name]}; b=$b; cp=${secs[cp]}; cpbest=${best[cp]}; cpb=$(cat "$BENCH_DIR/cp.bytes")
rate=b/s/1e9; ratio=(b/s)/(cpb/cp); rbest=(b/bs)/(cpb/cpbest)
print(f'| $name | {s:.2f} | {bs:.2f} | {b/1e9:.3f} | {rate:.2f} | {ratio:.2f}× | {rbest:.2f}× | {${rss[$name]}/1024:.0f} |')"
done
