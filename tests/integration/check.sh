# Sourced by the shell tests of this folder: `check NAME COMMAND...` runs the command
# and, when it fails, prints "FAIL: NAME" and sets fail=1 (the test exits 1 at its end
# when $fail is set). The test sets fail=0 before its first check. `free_port [NOT]`
# prints a port for a daemon the test starts.
check() {  # check NAME COMMAND...: the command must succeed
  local name="$1"; shift
  if ! "$@"; then echo "FAIL: $name"; fail=1; fi
}

# Ports below the kernel's ephemeral range (other tests' listeners on port 0 and every
# outgoing connection take theirs from it), nothing listening there now. A daemon may
# still lose its port to another test meanwhile: start it again on another one.
ephemeral_low="$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null)"
[[ "${ephemeral_low:-}" =~ ^[0-9]+$ ]] && [ "$ephemeral_low" -gt 12000 ] || ephemeral_low=32768
free_port() {  # free_port [NOT...]: a port nothing listens on, none of NOT
  local p n
  for _ in $(seq 1 100); do
    p=$((10000 + RANDOM % (ephemeral_low - 10000)))
    for n in "$@"; do [ "$p" = "$n" ] && continue 2; done
    (exec 3<> "/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
  return 1
}
