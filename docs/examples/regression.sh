#!/usr/bin/env bash
# hastily-bench regression gate; the steps of docs/examples/hastily-bench-regression.yml.
#
#   regression.sh run       choose the baseline, then run the benchmark set -> $HASTILY_OUT/head.json
#   regression.sh compare   compare head.json with the baseline; exit 1 on a regression
#
# Exit status: 0 no regression (or no baseline yet), 1 a regression, 2 the files could not be
# compared (unreadable, other schema, no common point, parameters changed everywhere),
# 3 some results of the run have status "error".
#
# Environment, all optional:
#   HASTILY_BENCH        the command, split on spaces (default: hastily-bench)
#   HASTILY_PYTHON       the Python that has hastily_bench installed (default: python)
#   HASTILY_OUT          folder for base.json, head.json, compare.md (default: hastily-out)
#   HASTILY_BASELINE     a committed baseline results file; used when it exists
#   HASTILY_HISTORY      a history folder of `run --save`; its latest run is the baseline otherwise
#   HASTILY_SAVE         "true": also save this run into HASTILY_HISTORY (the main branch does)
#   HASTILY_THRESHOLDS   METRIC=PERCENT items, space-separated (default: tops=2)
#   GITHUB_STEP_SUMMARY  set by GitHub Actions: the Markdown report is appended to it
set -euo pipefail

read -r -a hb <<< "${HASTILY_BENCH:-hastily-bench}"
python=${HASTILY_PYTHON:-python}
out=${HASTILY_OUT:-hastily-out}
baseline=${HASTILY_BASELINE:-}
history=${HASTILY_HISTORY:-}
read -r -a thresholds <<< "${HASTILY_THRESHOLDS:-tops=2}"

# The benchmark set. Model estimates are deterministic, so any change is a real one.
# Add "-a hastily -a baseline-cim" once those accelerators exist.
bench=(bert-base -a a40-tensorrt -a a100-40gb-tensorrt -l 512 --numerics off)

summary() {
    if [[ -n "${GITHUB_STEP_SUMMARY:-}" ]]; then cat >> "$GITHUB_STEP_SUMMARY"; else cat; fi
}

case "${1:-}" in
run)
    mkdir -p "$out"
    rm -f "$out/base.json" "$out/compare.md"
    # The baseline is chosen before this run is saved, or it would be compared with itself.
    if [[ -n "$baseline" && -f "$baseline" ]]; then
        cp "$baseline" "$out/base.json"
        echo "baseline: $baseline (committed)"
    elif [[ -n "$history" ]]; then
        latest=$("$python" -c 'import sys
from hastily_bench.history import latest_run
print(latest_run(sys.argv[1]) or "")' "$history")
        if [[ -n "$latest" ]]; then
            cp "$latest" "$out/base.json"
            echo "baseline: $latest (latest saved run)"
        fi
    fi
    [[ -f "$out/base.json" ]] || echo "baseline: none yet"
    save=()
    if [[ "${HASTILY_SAVE:-false}" == "true" && -n "$history" ]]; then
        save=(--save "$history")
    fi
    "${hb[@]}" run "${bench[@]}" -o "$out/head.json" ${save[@]+"${save[@]}"}
    ;;
compare)
    if [[ ! -f "$out/head.json" ]]; then
        echo "regression.sh: $out/head.json is missing; run 'regression.sh run' first" >&2
        exit 2
    fi
    if [[ ! -f "$out/base.json" ]]; then
        echo "**hastily-bench compare: no baseline yet**; this run is the first one." | summary
        exit 0
    fi
    args=()
    for t in "${thresholds[@]}"; do args+=(--threshold "$t"); done
    status=0
    "${hb[@]}" compare "$out/base.json" "$out/head.json" ${args[@]+"${args[@]}"} \
        --format markdown -o "$out/compare.md" || status=$?
    if [[ -f "$out/compare.md" ]]; then
        summary < "$out/compare.md"
    else
        echo "**hastily-bench compare could not compare the runs** (exit $status); see the job log." | summary
    fi
    exit "$status"
    ;;
*)
    echo "usage: regression.sh run|compare" >&2
    exit 2
    ;;
esac
