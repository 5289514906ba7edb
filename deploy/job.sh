# deploy/job.sh: what every launcher (deploy/local.sh, deploy/slurm/) does with a job
# file (sourced, bash only). A job file is a gflags flag file shared by all the processes
# of a job (deploy/README.md); the launchers learn the job from the scheduler's own
# validation of it, `towerps scheduler --flagfile=JOB --dry_run`, never by parsing it.
#
# API:
#   job_load TOWERPS JOB        validates JOB (one error line and return 1 if it is bad)
#                               and sets job_run_dir, job_servers, job_workers,
#                               job_curve_dir, job_json (the dry run's JSON line)
#   job_field JSON KEY          prints KEY's value of a flat JSON line (strings unquoted)
#   job_has_checkpoint TOWERPS JOB
#                               succeeds when the job's <run_dir>/checkpoint holds a
#                               complete checkpoint, the one --resume=latest continues
#                               from (the scheduler's own check of the whole chain)
#   job_make_keys TOWERPS JOB   a secured job whose keys are not made yet (--curve_dir
#                               names an empty or absent directory, and the job
#                               validates without keys): writes them with `towerps
#                               keygen` for its servers and workers; otherwise nothing
# A secured job's keys (--curve_dir) are made once: by its first launch through
# job_make_keys (deploy/local.sh, deploy/slurm/), or by hand with `towerps keygen`
# (Kubernetes: they go into a Secret). The dry run refuses a job whose keys are missing,
# so job_make_keys reads the directory from the job file's last --curve_dir line, the
# one setting a dry run cannot report while the keys are missing.

job_field() {
  local json="$1" key="$2" value
  value="$(sed -nE 's/.*"'"$key"'":("([^"\\]|\\.)*"|-?[0-9.]+|true|false|null).*/\1/p' <<<"$json")"
  if [[ "$value" == \"*\" ]]; then
    value="${value:1:${#value}-2}"
    value="${value//\\\"/\"}"
    value="${value//\\\\/\\}"
  fi
  printf '%s\n' "$value"
}

job_load() {
  local towerps="$1" job="$2" err
  if [ ! -r "$job" ]; then
    echo "job file '$job' is not readable" >&2
    return 1
  fi
  err="$(mktemp)"
  if ! job_json="$("$towerps" scheduler --flagfile="$job" --dry_run 2>"$err")"; then
    echo "job file $job: $(tail -n 1 "$err")" >&2
    rm -f "$err"
    return 1
  fi
  rm -f "$err"
  job_run_dir="$(job_field "$job_json" run_dir)"
  job_servers="$(job_field "$job_json" num_servers)"
  job_workers="$(job_field "$job_json" num_workers)"
  job_curve_dir="$(job_field "$job_json" curve_dir)"
}

job_has_checkpoint() {
  "$1" scheduler --flagfile="$2" --resume=latest --dry_run >/dev/null 2>&1
}

job_make_keys() {
  local towerps="$1" job="$2" dir json
  "$towerps" scheduler --flagfile="$job" --dry_run >/dev/null 2>&1 && return 0
  json="$("$towerps" scheduler --flagfile="$job" --curve_dir= --dry_run 2>/dev/null)" || return 0
  dir="$(sed -nE 's/^[[:space:]]*--?curve_dir=(.*[^[:space:]])[[:space:]]*$/\1/p' "$job" | tail -n 1)"
  if [ -z "$dir" ] || [ -n "$(ls -A "$dir" 2>/dev/null)" ]; then return 0; fi
  "$towerps" keygen --output_dir="$dir" --num_servers="$(job_field "$json" num_servers)" \
    --num_workers="$(job_field "$json" num_workers)" >/dev/null
}
