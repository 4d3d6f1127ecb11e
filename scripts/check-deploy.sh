#!/usr/bin/env bash
# Checks the deployment files (run by `make test`, after the binaries are built):
#   1. the example playbook (deploy/ansible/site.yml, inventory/example) runs with a local
#      connection into a staging root, one directory per inventory host, with service and
#      account management off; a second run changes nothing; a config that fails `--check` is
#      refused before it replaces the installed one;
#   2. every rendered config passes `<daemon> --check -c`, and has every key of the agreed
#      shapes (deploy/examples, and ../shared/config when present);
#   3. `systemd-analyze verify` on the units as installed in each staging root (with the binaries
#      the playbook put there), and `systemd-analyze security` under a threshold;
#   4. `ansible-lint` (production profile) on deploy/ansible, when it installs from PyPI.
# ansible-core and ansible-lint live in a virtualenv under
# ${XDG_CACHE_HOME:-$HOME/.cache}/ha-stack/ansible-venv, made once and reused.
#
# Environment: HA_BIN_DIR (default target/debug) holds vrrpd, proxyd, dbrouterd and hactl;
# HA_ANSIBLE_CORE_VERSION and HA_ANSIBLE_LINT_VERSION pin the tools.
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$PWD
ANSIBLE_DIR=$REPO/deploy/ansible
BIN_DIR=${HA_BIN_DIR:-$REPO/target/debug}
ANSIBLE_CORE_VERSION=${HA_ANSIBLE_CORE_VERSION:-2.19.14}
ANSIBLE_LINT_VERSION=${HA_ANSIBLE_LINT_VERSION:-26.10.1}
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/ha-stack
VENV=$CACHE/ansible-venv
# systemd-analyze security rates exposure 0.0 (locked down) .. 10.0; the units rate about 2-3.
# The threshold is given in tenths: 40 is 4.0.
SECURITY_THRESHOLD=${HA_SECURITY_THRESHOLD:-40}
DAEMONS=(vrrpd proxyd dbrouterd)

TMP=$(mktemp -d "${TMPDIR:-/tmp}/ha-check-deploy.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
STAGE=$TMP/stage
started=$SECONDS
failures=()

step() { printf '\n== %s\n' "$*"; }
ok() { printf '   ok: %s\n' "$*"; }
note() { printf '   note: %s\n' "$*"; }
fail() {
  printf '   FAIL: %s\n' "$*"
  failures+=("$*")
}

# ---------------------------------------------------------------------------------------------
step "binaries in ${BIN_DIR#"$REPO"/}"
for b in "${DAEMONS[@]}" hactl; do
  if [ ! -x "$BIN_DIR/$b" ]; then
    echo "check-deploy: $BIN_DIR/$b is missing: build first (cargo build --workspace --bins)" >&2
    exit 1
  fi
done
command -v systemd-analyze >/dev/null || {
  echo "check-deploy: systemd-analyze is missing (Debian package systemd; make deps installs it)" >&2
  exit 1
}
# A snapshot, so that a build running meanwhile cannot change them between the runs below;
# stripped of debug info, because the playbook copies them into four staging roots.
mkdir -p "$TMP/bin"
for b in "${DAEMONS[@]}" hactl; do
  strip -o "$TMP/bin/$b" "$BIN_DIR/$b" 2>/dev/null || cp "$BIN_DIR/$b" "$TMP/bin/$b"
done
ok "vrrpd proxyd dbrouterd hactl (snapshot in a temporary directory)"

# ---------------------------------------------------------------------------------------------
step "ansible-core $ANSIBLE_CORE_VERSION in ${VENV/#"$HOME"/\~}"
mkdir -p "$CACHE"
exec 9>"$CACHE/ansible-venv.lock"
flock 9   # one installer at a time
core_stamp="ansible-core==$ANSIBLE_CORE_VERSION"
if [ "$(cat "$VENV/.ha-stack-core" 2>/dev/null)" != "$core_stamp" ] ||
  ! "$VENV/bin/python" -c 'import ansible' 2>/dev/null; then
  rm -rf "$VENV"
  made=
  for py in python3 /usr/bin/python3; do
    if command -v "$py" >/dev/null && "$py" -m venv "$VENV" >"$TMP/venv.log" 2>&1; then
      made=$py
      break
    fi
    rm -rf "$VENV"
  done
  if [ -z "$made" ]; then
    cat "$TMP/venv.log" >&2
    echo "check-deploy: cannot make a virtualenv: install python3-venv (make deps does it)" >&2
    exit 1
  fi
  echo "   installing from PyPI (once; later runs reuse it)"
  if ! "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$core_stamp" \
    >"$TMP/pip.log" 2>&1; then
    cat "$TMP/pip.log" >&2
    echo "check-deploy: cannot install $core_stamp from PyPI" >&2
    exit 1
  fi
  echo "$core_stamp" >"$VENV/.ha-stack-core"
fi
lint_stamp="ansible-lint==$ANSIBLE_LINT_VERSION"
if [ "$(cat "$VENV/.ha-stack-lint" 2>/dev/null)" != "$lint_stamp" ]; then
  echo "   installing $lint_stamp from PyPI (once)"
  if timeout 120 "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
    "$lint_stamp" "$core_stamp" >"$TMP/pip-lint.log" 2>&1; then
    echo "$lint_stamp" >"$VENV/.ha-stack-lint"
  else
    tail -3 "$TMP/pip-lint.log" | cut -c1-200 | sed 's/^/   pip: /'
    note "ansible-lint could not be installed from PyPI; the lint step is skipped"
  fi
fi
flock -u 9
export PATH="$VENV/bin:$PATH"
ok "$(ansible-playbook --version 2>/dev/null | sed -n 1p)"

# Everything Ansible writes goes to the temporary directory; plain output.
export ANSIBLE_HOME=$TMP/ansible-home ANSIBLE_LOCAL_TEMP=$TMP/ansible-local
export ANSIBLE_REMOTE_TEMP=$TMP/ansible-remote ANSIBLE_NOCOLOR=1 ANSIBLE_PIPELINING=1
export ANSIBLE_RETRY_FILES_ENABLED=0 ANSIBLE_DEPRECATION_WARNINGS=0

# `vrrpd --check` also checks the VIPs against the interfaces it names when they exist on the
# machine it runs on: right on a load balancer, meaningless here, where lb1's eth0 would be this
# machine's eth0. So the staged runs and checks happen in an empty network namespace (only a
# loopback), where those interfaces do not exist, when this machine allows one (root).
NETNS=()
if unshare --net true 2>/dev/null; then
  NETNS=(unshare --net)
fi

# The example playbook, as a real run would be, with a local connection into $STAGE/<host>/.
playbook() {
  (cd "$ANSIBLE_DIR" && "${NETNS[@]}" ansible-playbook -i inventory/example/hosts.yml site.yml \
    --connection local \
    -e ansible_become=false \
    -e "ansible_python_interpreter=$VENV/bin/python" \
    -e "ha_stack_root=$STAGE/{{ inventory_hostname }}" \
    -e "ha_stack_bin_src=$TMP/bin" \
    -e ha_stack_manage_accounts=false \
    -e ha_stack_manage_services=false \
    -e ha_stack_serial=100% \
    "$@")
}

# "host changed=N" for each host of the PLAY RECAP in a log.
recap() { sed -n 's/^\([^ ]*\) *: ok=[0-9]* *changed=\([0-9]*\).*failed=\([0-9]*\).*/\1 changed=\2 failed=\3/p' "$1"; }

# ---------------------------------------------------------------------------------------------
step "ansible-playbook site.yml --connection local into a staging root (services and accounts off)"
mkdir -p "$STAGE"
if [ ${#NETNS[@]} -gt 0 ]; then
  note "run in an empty network namespace: vrrpd --check does not judge the VIPs by this machine's interfaces"
else
  note "no network namespace (not root?): vrrpd --check may judge the VIPs by this machine's interfaces"
fi
if playbook >"$TMP/run1.log" 2>&1; then
  ok "first run: $(recap "$TMP/run1.log" | tr '\n' ' ')"
  if playbook >"$TMP/run2.log" 2>&1; then
    if recap "$TMP/run2.log" | grep -qv ' changed=0 '; then
      grep -E '^(TASK|changed:)' "$TMP/run2.log" | grep -B1 '^changed:' | sed 's/^/   /'
      fail "second run changed something (not idempotent): $(recap "$TMP/run2.log" | tr '\n' ' ')"
    else
      ok "second run changed nothing"
    fi
  else
    tail -30 "$TMP/run2.log" | sed 's/^/   /'
    fail "second playbook run failed"
  fi
else
  tail -40 "$TMP/run1.log" | sed 's/^/   /'
  fail "playbook run failed"
fi
hosts=()
for d in "$STAGE"/*/; do
  [ -d "$d" ] && hosts+=("$(basename "$d")")
done
[ ${#hosts[@]} -gt 0 ] || fail "the playbook staged no host"

# validate: must refuse a bad file and leave the installed one in place.
if [ -f "$STAGE/lb1/etc/ha/proxyd.yaml" ]; then
  before=$(sha256sum <"$STAGE/lb1/etc/ha/proxyd.yaml")
  bad='{"ha_stack_proxyd_pools": {"app": {"balance": "round_robni", "servers": [{"address": "10.0.0.11:8080"}]}}}'
  if playbook --limit lb1 -e "$bad" >"$TMP/bad.log" 2>&1; then
    fail "a proxyd config with balance: round_robni was installed (validate did not refuse it)"
  elif ! grep -q 'round_robni' "$TMP/bad.log"; then
    tail -20 "$TMP/bad.log" | sed 's/^/   /'
    fail "the playbook failed on a bad config, but not with proxyd --check's error"
  elif [ "$(sha256sum <"$STAGE/lb1/etc/ha/proxyd.yaml")" != "$before" ]; then
    fail "the refused proxyd config replaced the installed one"
  else
    ok "a bad config (balance: round_robni) is refused by validate; the installed file stays"
  fi
fi

# ---------------------------------------------------------------------------------------------
step "<daemon> --check -c on every rendered config${NETNS:+ (in an empty network namespace)}"
checked=0
for h in "${hosts[@]}"; do
  for d in "${DAEMONS[@]}"; do
    f=$STAGE/$h/etc/ha/$d.yaml
    [ -f "$f" ] || continue
    if out=$("${NETNS[@]}" "$STAGE/$h/usr/local/sbin/$d" --check -c "$f" 2>&1); then
      ok "$h: $d --check -c /etc/ha/$d.yaml: $out"
    else
      printf '%s\n' "$out" | sed 's/^/   /'
      fail "$h: /etc/ha/$d.yaml fails $d --check"
    fi
    checked=$((checked + 1))
  done
done
[ "$checked" -gt 0 ] || fail "no rendered config to check"

step "rendered configs keep every key of the agreed shapes"
refs=("$REPO/deploy/examples")
if [ -d "$REPO/../shared/config" ]; then
  refs+=("$(cd "$REPO/../shared/config" && pwd)")
fi
if python3_out=$("$VENV/bin/python" - "$STAGE" "${refs[@]}" <<'EOF' 2>&1
import glob, os, sys
import yaml

def paths(node, prefix=""):
    """Key paths of a YAML tree, list indices collapsed to []."""
    if isinstance(node, dict):
        for k, v in node.items():
            p = f"{prefix}.{k}" if prefix else k
            yield p
            yield from paths(v, p)
    elif isinstance(node, list):
        for v in node:
            yield from paths(v, prefix + "[]")

def load(path):
    with open(path) as f:
        # BaseLoader: every scalar a string, so that a key "on" stays "on" (YAML 1.2, as the
        # daemons read it), not the boolean of YAML 1.1.
        return yaml.load(f, Loader=yaml.BaseLoader)

# Keys of which a file has one or the other: either counts for both.
ALTERNATIVES = {
    "dbrouterd": [("monitor.password", "monitor.password_file"),
                  ("users[].password", "users[].password_hash")],
}

stage, refs = sys.argv[1], sys.argv[2:]
missing = 0
for daemon in ("vrrpd", "proxyd", "dbrouterd"):
    rendered = set()
    for f in glob.glob(f"{stage}/*/etc/ha/{daemon}.yaml"):
        rendered |= set(paths(load(f)))
    for group in ALTERNATIVES.get(daemon, []):
        if rendered & set(group):
            rendered |= set(group)
    if not rendered:
        print(f"no rendered {daemon}.yaml")
        missing += 1
        continue
    for ref in refs:
        shape = os.path.join(ref, f"{daemon}.yaml")
        if not os.path.exists(shape):
            continue
        lost = sorted(set(paths(load(shape))) - rendered)
        for p in lost:
            print(f"{daemon}: {p} (in {shape}) is in no rendered {daemon}.yaml")
        missing += len(lost)
        if not lost:
            print(f"ok: {daemon}: every key of {shape}")
sys.exit(1 if missing else 0)
EOF
); then
  printf '%s\n' "$python3_out" | sed 's/^ok: /   ok: /'
else
  printf '%s\n' "$python3_out" | sed 's/^/   /'
  fail "rendered configs lack keys of the agreed shapes"
fi

# ---------------------------------------------------------------------------------------------
step "systemd-analyze verify on the units installed in each staging root"
verified=()
for h in "${hosts[@]}"; do
  root=$STAGE/$h
  units=()
  for u in "$root"/etc/systemd/system/*.service; do
    [ -f "$u" ] && units+=("$(basename "$u")")
  done
  [ ${#units[@]} -gt 0 ] || continue
  # The units installed must be deploy/systemd's, byte for byte.
  for u in "${units[@]}"; do
    cmp -s "$root/etc/systemd/system/$u" "$REPO/deploy/systemd/$u" ||
      fail "$h: installed $u differs from deploy/systemd/$u"
  done
  # verify --root resolves units and ExecStart= binaries inside the root: give it the system's
  # own units (targets the ours depend on by default) beside the installed ones.
  mkdir -p "$root/usr/lib/systemd"
  cp -a /usr/lib/systemd/system "$root/usr/lib/systemd/"
  rc=0
  systemd-analyze verify --man=no --root="$root" "${units[@]}" >"$TMP/verify.log" 2>&1 || rc=$?
  # Any message about our units is an error, warnings included (an unknown key is only a
  # warning to systemd); messages about the host's own units are the environment's.
  ours=$(grep -E "(vrrpd|proxyd|dbrouterd)\.service" "$TMP/verify.log" || true)
  others=$(grep -vE "(vrrpd|proxyd|dbrouterd)\.service" "$TMP/verify.log" || true)
  [ -z "$others" ] || printf '%s\n' "$others" | sed 's/^/   note (environment): /'
  if [ "$rc" -ne 0 ] || [ -n "$ours" ]; then
    [ -z "$ours" ] || printf '%s\n' "$ours" | sed 's/^/   /'
    fail "$h: systemd-analyze verify ${units[*]} (exit $rc)"
  else
    ok "$h: ${units[*]}: clean"
    verified+=("${units[@]}")
  fi
  # Hardening must not regress.
  for u in "${units[@]}"; do
    if out=$(systemd-analyze security --offline=true --root="$root" \
      --threshold="$SECURITY_THRESHOLD" "$u" 2>&1); then
      ok "$h: $u: $(printf '%s\n' "$out" | grep -o 'Overall exposure level.*' | sed 's/ for [^:]*//')"
    elif printf '%s\n' "$out" | grep -q 'Overall exposure level'; then
      fail "$h: $u: $(printf '%s\n' "$out" | grep -o 'Overall exposure level.*'), above $SECURITY_THRESHOLD/10"
    elif printf '%s\n' "$out" | grep -q 'unrecognized option'; then
      note "this systemd-analyze has no security --offline/--threshold (systemd < 250): skipped"
    else
      printf '%s\n' "$out" | tail -5 | sed 's/^/   /'
      fail "$h: systemd-analyze security $u"
    fi
  done
done
for u in "$REPO"/deploy/systemd/*.service; do
  printf '%s\n' "${verified[@]}" | grep -qx "$(basename "$u")" ||
    fail "$(basename "$u") was not verified (installed on no example host, or verify failed)"
done

# ---------------------------------------------------------------------------------------------
step "ansible-lint (production profile) on deploy/ansible"
if [ -x "$VENV/bin/ansible-lint" ] && [ "$(cat "$VENV/.ha-stack-lint")" = "$lint_stamp" ]; then
  if (cd "$ANSIBLE_DIR" && ansible-lint --nocolor >"$TMP/lint.log" 2>&1); then
    ok "$(grep -E 'Passed|passed' "$TMP/lint.log" | tail -1)"
  else
    sed 's/^/   /' "$TMP/lint.log"
    fail "ansible-lint"
  fi
else
  note "ansible-lint is not installed (PyPI unreachable?): skipped, not failed"
fi

# ---------------------------------------------------------------------------------------------
echo
if [ ${#failures[@]} -gt 0 ]; then
  echo "check-deploy: ${#failures[@]} failure(s) in $((SECONDS - started))s:"
  printf '  - %s\n' "${failures[@]}"
  exit 1
fi
echo "check-deploy: ok ($((SECONDS - started))s)"
