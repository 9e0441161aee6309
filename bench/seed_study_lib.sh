# Shared by the studies repeated over training seeds (hil_training_study.sh, butterfly_seed_study.sh,
# finetune_seed_study.sh); sourced, not run. Their results are listed in a manifest that
# bench/seed_study_summary.py reads.

# once OUT COMMAND...: runs COMMAND --out OUT.part and renames the file to OUT, unless OUT exists, so
# that a study killed at any point resumes without keeping a half-written network or result.
once() {
  local out=$1
  shift
  [ -f "$out" ] && return 0
  "$@" --out "$out.part"
  mv "$out.part" "$out"
}

# manifest_start MANIFEST: the header, unless the file exists (resuming).
manifest_start() { [ -f "$1" ] || echo "arm,condition,seed,eval_json" > "$1"; }

# manifest_row MANIFEST ARM CONDITION SEED FILE: the row, once. ARM and CONDITION go into the CSV
# unquoted, so a comma in them is refused.
manifest_row() {
  if [[ "$2$3" == *,* ]]; then
    echo "manifest_row: '$2' / '$3': arm and condition must not contain commas" >&2
    return 2
  fi
  cut -d, -f1-3 "$1" | grep -qxF "$2,$3,$4" || echo "$2,$3,$4,$5" >> "$1"
}
