#!/usr/bin/env bash
# The long fuzz runs that docs/conformance.md records: each target gets LIMIT seconds of CPU
# (default 3600), not of wall time, under `nice -n 19`, two targets at a time, so that a
# shared machine's builds slow it down without cutting it short. A target is stopped with
# SIGINT once its CPU time (user + system) reaches LIMIT; libFuzzer then prints its final
# stats. Logs and CPU figures go to fuzz/target/long/.
#
#   cargo +nightly fuzz build && fuzz/long-run.sh
#
# TARGETS picks and orders the targets (default: all six), each optionally with its own limit
# (`ws_frames:1800`); LANES (default 2) is how many run at once. The corpus in target/corpus/
# is kept between runs, so a second run of a target continues where the first stopped.
set -euo pipefail
cd "$(dirname "$0")"
LIMIT=${LIMIT:-3600}
BIN=target/x86_64-unknown-linux-gnu/release
OUT=target/long
TCK=$(getconf CLK_TCK)
mkdir -p "$OUT"

run_one() {
    local t=${1%%:*} limit=$LIMIT cpu=0
    [[ $1 == *:* ]] && limit=${1##*:}
    mkdir -p "target/corpus/$t"
    echo "start $(date -u +%FT%TZ)" >"$OUT/$t.times"
    mkdir -p "artifacts/$t"
    nice -n 19 "$BIN/$t" "target/corpus/$t" "corpus/$t" -max_total_time=360000 \
        -artifact_prefix="artifacts/$t/" -print_final_stats=1 >"$OUT/$t.log" 2>&1 &
    local pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        sleep 15
        local stat
        stat=$(cat "/proc/$pid/stat" 2>/dev/null) || break
        # utime and stime: fields 14 and 15, in clock ticks.
        cpu=$(awk -v tck="$TCK" '{print int(($14 + $15) / tck)}' <<<"$stat")
        echo "$(date -u +%T) cpu=$cpu" >"$OUT/$t.cpu"
        if ((cpu >= limit)); then kill -INT "$pid"; fi
    done
    local rc=0
    wait "$pid" || rc=$?
    echo "end $(date -u +%FT%TZ) rc=$rc cpu=$cpu" >>"$OUT/$t.times"
}

read -r -a targets <<<"${TARGETS:-ws_frames ws_inflate ws_command http_head http_chunked relay_http}"
LANES=${LANES:-2}
lane() { # every LANES-th target, from the $1-th
    local i
    for ((i = $1; i < ${#targets[@]}; i += LANES)); do run_one "${targets[i]}"; done
}
for ((l = 0; l < LANES; l++)); do lane "$l" & done
wait
