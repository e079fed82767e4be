#!/usr/bin/env bash
# The offline quality table of docs/eval.md, both data sets, every model, in one command.
#
#   scripts/quality_table.sh          # or: make quality
#
# The whole table is days of CPU (hours on a GPU), so it runs in parts, one
# `llmrec-stream eval` results folder per (data set, group of models) under $OUT, and a part
# that finished (its `.done` marker) is not run again: after an interruption the same command
# goes on where it stopped. A part that was interrupted runs again, loading every trained fit
# it had finished from $OUT/fits (`--fit-store`), so it loses at most the fit in progress. Then
# `llmrec-stream eval-table` merges the parts into $OUT/table (table.md, results.json with
# every row's source folder, user_ndcg.npz, ndcg.png): the same table and paired bootstrap
# intervals one run over everything would have written, with the users of each data set
# checked to be the same rows.
#
# Settings (environment):
#   OUT       results root                                   [results/quality]
#   SCIENTIFIC, BEAUTY   the two data sets                   [../shared/data/...]
#   ENCODER   text encoder artifact for item text            [the CLI's default]
#   SEEDS     seeds per model                                [3]
#   THREADS   torch / BLAS threads per run                   [1]
#   EXTRA     more `llmrec-stream eval` options, e.g. "--grid-points 1 --max-epochs 2" for a
#             smoke run (a table made so is not the headline protocol, and says so)
set -euo pipefail
cd "$(dirname "$0")/.."

LLMREC="${LLMREC:-$( [ -x .venv/bin/llmrec-stream ] && echo .venv/bin/llmrec-stream || echo llmrec-stream )}"
OUT="${OUT:-results/quality}"
SCIENTIFIC="${SCIENTIFIC:-../shared/data/scientific}"
BEAUTY="${BEAUTY:-../shared/data/beauty/Beauty.txt}"
SEEDS="${SEEDS:-3}"
THREADS="${THREADS:-1}"
EXTRA="${EXTRA:-}"
ENCODER_ARGS=()
if [ -n "${ENCODER:-}" ]; then ENCODER_ARGS=(--encoder "$ENCODER"); fi

# Groups of models, one results folder each: peers without training loops first (minutes),
# then the sequence models (hours each on CPU). ours-ease reuses ours-ce's fits within its
# own part, so the two share one.
GROUPS_=(
  "peers:popularity,ease,item-knn,bpr,als"
  "sasrec:sasrec"
  "ours:ours-ce,ours-ease,ours-mse"
  "ablations:ours-ce-no-cooc,sasrec-cooc"
)

part() {  # part NAME DATA MODELS
  local dir="$OUT/$1"
  if [ -f "$dir/.done" ]; then echo "quality_table: $1 done before, kept"; return; fi
  rm -rf "$dir"
  echo "quality_table: $1 ($3) on $2"
  # shellcheck disable=SC2086  # EXTRA is a list of options
  "$LLMREC" eval --data "$2" --models "$3" --seeds "$SEEDS" --threads "$THREADS" --quiet \
    --cache "$OUT/cache" --fit-store "$OUT/fits" --results "$dir" "${ENCODER_ARGS[@]}" $EXTRA
  touch "$dir/.done"
}

for data in "scientific:$SCIENTIFIC" "beauty:$BEAUTY"; do
  tag="${data%%:*}" path="${data#*:}"
  [ -e "$path" ] || { echo "quality_table: $path not found (see ../shared/data/README.md)" >&2; exit 2; }
  for group in "${GROUPS_[@]}"; do
    part "$tag-${group%%:*}" "$path" "${group#*:}"
  done
done

runs=()
for d in "$OUT"/scientific-* "$OUT"/beauty-*; do runs+=("$d"); done
"$LLMREC" eval-table "${runs[@]}" --results "$OUT/table"
echo "quality_table: the table is $OUT/table/table.md"
