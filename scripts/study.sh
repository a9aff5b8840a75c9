#!/usr/bin/env bash
# The study of docs/results.md: configs/study.toml, whose [[phases]] run the in-domain rows first
# and the cross-tests last (`hardneg run configs/study.toml --dry-run` times each phase).
#
#   scripts/study.sh run [RUN_DIR]      the whole study; rerun to resume (every stage is cached)
#   scripts/study.sh stop [RUN_DIR]     stop it (SIGTERM: a run survives a kill; `run` resumes it)
#   scripts/study.sh status [RUN_DIR]   running or not, the phase and stage it is at, and what is
#                                       left per phase with its rough time (the dry run's table)
#   scripts/study.sh report [RUN_DIR]   report what has finished and refill docs/results.md and
#                                       docs/training.md from it (FINAL=1 also copies the plots)
#
# RUN_DIR defaults to ~/.cache/hardneg/study; keep it outside the checkout. `run` executes a
# snapshot of the checkout's HEAD, code and config (RUN_DIR.code/), so that editing the checkout
# does not change a running study; it logs to RUN_DIR.log and holds RUN_DIR.lock while it runs.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
action="${1:-run}"
run_dir="${2:-$HOME/.cache/hardneg/study}"
run_dir="${run_dir%/}"
hardneg="${HARDNEG_BIN:-$repo/.venv/bin/hardneg}"
python="${HARDNEG_PYTHON:-$repo/.venv/bin/python}"
export HARDNEG_DATA="${HARDNEG_DATA:-$repo/../shared/data/beir}"

case "$action" in
run)
  mkdir -p "$(dirname "$run_dir")"
  exec 9> "$run_dir.lock"
  flock -n 9 || { echo "study.sh: $run_dir is already running (see $run_dir.log)" >&2; exit 2; }
  code="$run_dir.code"
  rm -rf "$code" && mkdir -p "$code"
  git -C "$repo" archive HEAD src | tar -x -C "$code"
  echo "$(date -Is) start at $(git -C "$repo" rev-parse --short HEAD)" >> "$run_dir.log"
  # A background job ignores SIGINT: pass a Ctrl-C (or a TERM, a HUP) on, and wait for it to end.
  # The trap is set first (a signal between the fork and the trap would end only this script),
  # and a wait that a trap cut short is waited again: bash keeps an ended job's own status.
  pid="" interrupted=0
  trap 'interrupted=1; [[ -z "$pid" ]] || kill -TERM "$pid" 2>/dev/null || true' INT TERM HUP
  PYTHONPATH="$code/src" "$hardneg" run "$code/src/hardneg/configs/study.toml" -o "$run_dir" -q \
    >> "$run_dir.log" 2>&1 &
  pid=$!
  echo "$pid" > "$run_dir.pid"
  (( ! interrupted )) || kill -TERM "$pid" 2>/dev/null || true
  while :; do
    interrupted=0 rc=0
    wait "$pid" || rc=$?
    (( interrupted )) || break
  done
  rm -f "$run_dir.pid"
  echo "$(date -Is) exit $rc" >> "$run_dir.log"
  exit "$rc"
  ;;
stop)
  if [[ ! -f "$run_dir.pid" ]] || flock -n "$run_dir.lock" true; then  # the lock is free: none runs
    rm -f "$run_dir.pid"
    echo "study.sh: no study running in $run_dir" >&2
    exit 2
  fi
  kill -TERM "$(cat "$run_dir.pid")"
  ;;
status)
  if [[ -f "$run_dir.pid" ]] && ! flock -n "$run_dir.lock" true; then
    echo "running (pid $(cat "$run_dir.pid")), log $run_dir.log"
  else
    echo "not running; \`scripts/study.sh run\` resumes it"
  fi
  if [[ -f "$run_dir.log" ]]; then
    for line in ' start at | exit [0-9]+$' '^[0-9]+/[0-9]+ (phase|the whole grid)' '^\[[0-9]+/[0-9]+\]'; do
      grep -E "$line" "$run_dir.log" | tail -n 1 || true  # the last start or exit, phase, stage
    done
  fi
  code="$run_dir.code"  # the config the run uses, and the code that plans it
  [[ -d "$code/src" ]] || code="$repo"
  PYTHONPATH="$code/src" "$hardneg" run "$code/src/hardneg/configs/study.toml" -o "$run_dir" --dry-run \
    | sed -n '/^phases, in order/,$p'
  ;;
report)
  out="${REPORT_DIR:-/tmp/study-report}"
  "$hardneg" report "$run_dir" -o "$out"  # its plan.json is the whole grid's, phases or not
  cp "$out/results.json" "$repo/docs/results/study.json"
  "$python" "$repo/scripts/results_doc.py" "$repo/docs/results/study.json" "$repo/docs/training.md"
  # results.md's and generation.md's prose quote this run and the first study: list what is stale
  stale=0
  for doc in results generation; do
    "$python" "$repo/scripts/results_doc.py" "$repo/docs/results/study.json" "$repo/docs/$doc.md" \
      --also "$repo/docs/results/study-1.json" || stale=$?
    (( stale <= 1 )) || exit "$stale"
  done
  if [[ "${FINAL:-0}" == 1 ]]; then
    shopt -s nullglob
    for plot in "$out"/*.png; do cp "$plot" "$repo/docs/img/study-$(basename "$plot")"; done
  fi
  (( ! stale )) || echo "study.sh: the docs quote figures the run no longer has (above)" >&2
  ;;
*)
  echo "usage: scripts/study.sh run|stop|status|report [RUN_DIR]" >&2
  exit 2
  ;;
esac
