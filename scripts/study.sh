#!/usr/bin/env bash
# The study of docs/results.md: configs/study.toml, whose [[phases]] run the in-domain rows first
# and the cross-tests last (`hardneg run configs/study.toml --dry-run` times each phase).
#
#   scripts/study.sh run [RUN_DIR]      the whole study; rerun to resume (every stage is cached)
#   scripts/study.sh report [RUN_DIR]   report what has finished and refill docs/results.md and
#                                       docs/training.md from it (FINAL=1 also copies the plots)
#
# RUN_DIR defaults to ~/.cache/hardneg/study; keep it outside the checkout. `run` executes a
# snapshot of the checkout's HEAD (RUN_DIR/../code), so that editing src/ does not change a running
# study, and logs to RUN_DIR/../study.log. Pause: pkill -f "study.sh run"; pkill -INT -f "hardneg run".
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
action="${1:-run}"
run_dir="${2:-$HOME/.cache/hardneg/study}"
home="$(dirname "$run_dir")"
hardneg="${HARDNEG_BIN:-$repo/.venv/bin/hardneg}"
export HARDNEG_DATA="${HARDNEG_DATA:-$repo/../shared/data/beir}"
mkdir -p "$home"

case "$action" in
run)
  rm -rf "$home/code" && mkdir -p "$home/code"
  git -C "$repo" archive HEAD src | tar -x -C "$home/code"
  echo "$(date -Is) start at $(git -C "$repo" rev-parse --short HEAD)" >> "$home/study.log"
  rc=0
  PYTHONPATH="$home/code/src" "$hardneg" run "$repo/configs/study.toml" -o "$run_dir" -q \
    >> "$home/study.log" 2>&1 || rc=$?
  echo "$(date -Is) exit $rc" >> "$home/study.log"
  ;;
report)
  out="${REPORT_DIR:-/tmp/study-report}"
  "$hardneg" report "$run_dir" -c "$repo/configs/study.toml" -o "$out"
  cp "$out/results.json" "$repo/docs/results/study.json"
  for doc in results training; do
    "$repo/.venv/bin/python" "$repo/scripts/results_doc.py" "$repo/docs/results/study.json" \
      "$repo/docs/$doc.md"
  done
  if [[ "${FINAL:-0}" == 1 ]]; then
    for plot in "$out"/*.png; do cp "$plot" "$repo/docs/img/study-$(basename "$plot")"; done
  fi
  ;;
*)
  echo "usage: scripts/study.sh run|report [RUN_DIR]" >&2
  exit 2
  ;;
esac
