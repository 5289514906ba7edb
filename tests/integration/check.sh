# Sourced by the shell tests of this folder: `check NAME COMMAND...` runs the command
# and, when it fails, prints "FAIL: NAME" and sets fail=1 (the test exits 1 at its end
# when $fail is set). The test sets fail=0 before its first check.
check() {  # check NAME COMMAND...: the command must succeed
  local name="$1"; shift
  if ! "$@"; then echo "FAIL: $name"; fail=1; fi
}
