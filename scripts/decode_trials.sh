#!/usr/bin/env bash
# Decode trials against the default, alternated in one run (the noise between runs of one
# configuration, 1–3%, is as large as most effects, so only configurations timed in turn compare).
#
#   scripts/decode_trials.sh [LABEL=ASSIGNMENTS ...]
#   scripts/decode_trials.sh 'balanced=MODELC_GEMV_BALANCED_GRID=1' 'nopdl=MODELC_NO_PDL=1'
#
# Each argument names a configuration: LABEL, `=`, then environment assignments separated by
# spaces (`default=` is always timed first); `BIN=PATH` among them runs another modelc binary
# (a build of another commit, say). ROUNDS (3), SPEC (specs/hybrid-1b.yaml), BATCH (1,2),
# PAST (512) and MODELC_BIN (.gpu-bin/modelc) are read from the environment. Every
# configuration is run once to warm the kernel cache, then ROUNDS times in turn; the table gives
# each configuration's decode ms a step per round and batch, and the floor of the first run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN=${MODELC_BIN:-.gpu-bin/modelc}
ROUNDS=${ROUNDS:-3}
configs=("default=" "$@")
for c in "${configs[@]}"; do
    case "$c" in
    *=*) ;;
    *) echo "decode_trials: '$c' is not LABEL=ASSIGNMENTS" >&2; exit 2 ;;
    esac
done

run() { # run CONFIG: one bench, its decode rows on stdout
    local assignments="" bin=$BIN a
    for a in ${1#*=}; do
        case "$a" in
        BIN=*) bin=${a#BIN=} ;;
        *) assignments+=" $a" ;;
        esac
    done
    # shellcheck disable=SC2086 # the assignments are words by design
    env $assignments "$bin" bench "${SPEC:-specs/hybrid-1b.yaml}" --prefill-tokens 128 \
        --decode-batch "${BATCH:-1,2}" --decode-past "${PAST:-512}"
}

table() { # the table of the rounds so far
    echo "$floor"
    echo "| configuration | batch | ms a step, round by round |"
    echo "|---|---|---|"
    for c in "${configs[@]}"; do
        for b in $(tr ',' ' ' <<<"${BATCH:-1,2}"); do
            echo "| ${c} | $b |${ms["${c%%=*}/$b"]:- (none)} |"
        done
    done
}

for c in "${configs[@]}"; do run "$c" >/dev/null; done
declare -A ms
floor=""
for r in $(seq 1 "$ROUNDS"); do
    for c in "${configs[@]}"; do
        out=$(run "$c")
        [ -n "$floor" ] || floor=$(grep -m1 '^decode floor' <<<"$out" || true)
        # | decode, batch B, past P | ms | ...
        while IFS='|' read -r _ phase t _; do
            b=$(sed -E 's/.*batch ([0-9]+).*/\1/' <<<"$phase")
            ms["${c%%=*}/$b"]+=" $(tr -d ' ' <<<"$t")"
        done < <(grep '^| decode, batch' <<<"$out")
    done
    # Every round's table on stderr (a run cut short keeps the rounds it finished), the last on stdout.
    if [ "$r" -lt "$ROUNDS" ]; then table >&2; fi
done
table
