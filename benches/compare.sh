#!/usr/bin/env bash
# Side-by-side benchmark: sage against git, restic, tar+zstd and cp -a on one generated Claude home, then
# sage push/sync against rsync, restic (sftp) and git push over a real sshd on 127.0.0.1.
# The measurements and targets are those of the "Performance" sections of issues 3 (store) and 4 (sync).
#
#   bash benches/compare.sh                  # 500 MB home (about 5 minutes on 2 cores)
#   SIZE_MB=50 bash benches/compare.sh       # quick pass
#
# Environment: SIZE_MB (500), SEED (42), REPS (3: repetitions of the short operations, the median is shown),
# FULL=1 (also time the initial `git push` over ssh when SIZE_MB > 200), KEEP=1 (keep the temp dir),
# SKIP_BUILD=1 (use target/release/sage as it is), TMPDIR (where the temp dir goes).
# Needs root for apt-get and for sshd (it runs one on a free loopback port, with keys in the temp dir).
# Ratios are other / sage: above 1 means sage is faster (or smaller).
set -euo pipefail

SIZE_MB=${SIZE_MB:-500}
SEED=${SEED:-42}
REPS=${REPS:-3}
FULL=${FULL:-0}
KEEP=${KEEP:-0}
SKIP_BUILD=${SKIP_BUILD:-0}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CMDLINE="SIZE_MB=$SIZE_MB SEED=$SEED REPS=$REPS FULL=$FULL bash benches/compare.sh${*:+ $*}"

unset SAGE_STORE CLAUDE_CONFIG_DIR SAGE_SSH_COMMAND SAGE_ZSTD_LEVEL SAGE_FAILPOINT GIT_DIR GIT_WORK_TREE \
  RESTIC_REPOSITORY RESTIC_PASSWORD_FILE 2>/dev/null || true
export LC_ALL=C

say() { printf '%s\n' "$*"; }
note() { printf '  .. %s\n' "$*" >&2; }

# ---------------------------------------------------------------- tools
need_pkgs=()
command -v restic >/dev/null || need_pkgs+=(restic)
command -v rsync >/dev/null || need_pkgs+=(rsync)
command -v zstd >/dev/null || need_pkgs+=(zstd)
command -v git >/dev/null || need_pkgs+=(git)
command -v tar >/dev/null || need_pkgs+=(tar)
[ -x /usr/sbin/sshd ] && command -v ssh >/dev/null && command -v ssh-keygen >/dev/null || need_pkgs+=(openssh-server openssh-client)
[ -x /usr/bin/time ] || need_pkgs+=(time)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  note "installing from Debian: ${need_pkgs[*]}"
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}"; } >/dev/null 2>&1; then
    note "apt-get install failed for ${need_pkgs[*]}: the rows needing them will say FAIL"
  fi
fi

# ---------------------------------------------------------------- temp dir, cleanup
T=$(mktemp -d "${TMPDIR:-/tmp}/sage-compare.XXXXXX")
chmod 700 "$T"
LOG=$T/logs
mkdir -p "$LOG"
SSHD_PID=
cleanup() {
  local rc=$?
  if [ -n "$SSHD_PID" ]; then kill "$SSHD_PID" 2>/dev/null || true; wait "$SSHD_PID" 2>/dev/null || true; fi
  if [ "$KEEP" = 1 ]; then note "kept $T"; else rm -rf "$T"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- build
if [ "$SKIP_BUILD" != 1 ]; then
  note "cargo build --release (in $ROOT)"
  if ! (cd "$ROOT" && cargo build --release) >"$LOG/build.log" 2>&1; then
    tail -20 "$LOG/build.log" >&2
    if [ -x "$ROOT/target/release/sage" ]; then
      note "BUILD FAILED: using the existing target/release/sage (see the build log above)"
      BUILD_NOTE="build FAILED, existing binary used"
    else
      say "cargo build --release failed and there is no binary; nothing to measure"; exit 1
    fi
  fi
fi
BUILD_NOTE=${BUILD_NOTE:-}
# A private copy: another `cargo build` in the tree during the run must not swap the binary under us.
cp "$ROOT/target/release/sage" "$T/sage"
SAGE=$T/sage
export XDG_DATA_HOME=$T/xdg

# ---------------------------------------------------------------- measurement helpers
declare -A V=()    # key -> number (seconds or bytes or KB), or FAIL, or "SKIP:why"
declare -A RSS=()  # key -> peak RSS in KB
FAILS=()

now_ns() { date +%s%N; }

# measure KEY CMD...: wall time (ns clock) and peak RSS (/usr/bin/time %M, the largest process) of CMD;
# stdout to $LOG/KEY.out, stderr to $LOG/KEY.err. A failure is recorded, never fatal.
measure() {
  local key=$1; shift
  local rc=0 t0 t1
  sync
  t0=$(now_ns)
  /usr/bin/time -f '%M' -o "$LOG/$key.rss" "$@" >"$LOG/$key.out" 2>"$LOG/$key.err" || rc=$?
  t1=$(now_ns)
  if [ "$rc" -eq 0 ]; then
    V[$key]=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.4f", (b-a)/1e9}')
    RSS[$key]=$(tail -n1 "$LOG/$key.rss")
  else
    V[$key]=FAIL
    FAILS+=("$key (exit $rc): $*")
  fi
  return 0
}

# median OUT KEY1 KEY2...: the median of the numeric values (FAIL if none)
median() {
  local out=$1; shift
  local vals=() k
  for k in "$@"; do
    case "${V[$k]:-}" in '' | FAIL | SKIP*) ;; *) vals+=("${V[$k]}") ;; esac
  done
  if [ ${#vals[@]} -eq 0 ]; then V[$out]=FAIL; return 0; fi
  V[$out]=$(printf '%s\n' "${vals[@]}" | sort -g | awk '{a[NR]=$1} END{ if (NR%2) print a[(NR+1)/2]; else printf "%.4f\n", (a[NR/2]+a[NR/2+1])/2 }')
  # the RSS of the first run stands for all
  [ -n "${RSS[$1]:-}" ] && RSS[$out]=${RSS[$1]}
  return 0
}

# rep KEY N CMD...: N runs, the median in KEY
rep() {
  local key=$1 n=$2 i keys=(); shift 2
  for ((i = 1; i <= n; i++)); do measure "$key.$i" "$@"; keys+=("$key.$i"); done
  median "$key" "${keys[@]}"
}

isnum() { [[ "${1:-}" =~ ^[0-9]+(\.[0-9]+)?$ ]]; }
fmt_s() { awk -v x="$1" 'BEGIN{ if (x < 1) printf "%.0f ms", x*1000; else if (x < 100) printf "%.2f s", x; else printf "%.0f s", x }'; }
fmt_b() { awk -v x="$1" 'BEGIN{ if (x < 1e6) printf "%.1f KB", x/1e3; else printf "%.1f MB", x/1e6 }'; }
fmt_kb() { awk -v x="$1" 'BEGIN{ printf "%.0f MB", x/1024 }'; }

# cell UNIT KEY [SAGEKEY]: "value (other/sage x)"
cell() {
  local unit=$1 key=$2 base=${3:-} v=${V[$2]:-} s
  case "$v" in
    '') printf 'n/a'; return ;;
    FAIL) printf 'FAIL'; return ;;
    SKIP*) printf '%s' "${v#SKIP:}"; return ;;
  esac
  case "$unit" in s) s=$(fmt_s "$v") ;; b) s=$(fmt_b "$v") ;; kb) s=$(fmt_kb "$v") ;; esac
  if [ -n "$base" ] && [ "$key" != "$base" ] && isnum "${V[$base]:-}"; then
    s="$s ($(awk -v a="$v" -v b="${V[$base]}" 'BEGIN{ if (b > 0) printf "%.2fx", a/b; else printf "-" }'))"
  fi
  printf '%s' "$s"
}

# check EXPR-over-a,b,c A B [C]: PASS / MISS / n/a (any input not numeric)
check() {
  local expr=$1; shift
  local x
  for x in "$@"; do isnum "$x" || { printf 'n/a'; return; }; done
  awk -v a="${1:-0}" -v b="${2:-0}" -v c="${3:-0}" "BEGIN{ if ($expr) print \"PASS\"; else print \"MISS\" }"
}

TABLE=()
W_LABEL=44 W_CELL=19 W_TARGET=38
row() { # label c1..c5 target result
  TABLE+=("$(printf "%-${W_LABEL}s %-${W_CELL}s %-${W_CELL}s %-${W_CELL}s %-${W_CELL}s %-${W_CELL}s %-${W_TARGET}s %s" "$@")")
}
rule() { TABLE+=("$(printf '%*s' $((W_LABEL + 5 * (W_CELL + 1) + W_TARGET + 6)) '' | tr ' ' -)"); }

NOTES=()
addnote() { NOTES+=("$*"); }

# compare a restored / synced tree with the source: every file there must be identical to the source's;
# paths only in the source are expected when sage's rules exclude them (listed by top-level name).
check_tree() { # LABEL SRC DST
  local label=$1 src=$2 dst=$3 out=$LOG/diff.$RANDOM bad only
  diff -rq --no-dereference "$src" "$dst" >"$out" 2>&1 || true
  bad=$(grep -v -e "^Only in $src" -e '\.sage-home' "$out" || true)
  only=$(grep "^Only in $src" "$out" | sed -e "s|^Only in $src||" -e 's|: |/|' -e 's|^/||' -e 's|^projects/[^/]*/|projects/*/|' |
    sort -u | tr '\n' ' ' || true)
  if [ -n "$bad" ]; then
    addnote "WRONG: $label differs from the source: $(printf '%s' "$bad" | head -5 | tr '\n' ';')"
  else
    addnote "ok: $label matches the source${only:+ (not copied, by design: $only)}"
  fi
}

# ---------------------------------------------------------------- header
say "# sage side-by-side benchmark"
say "command:  $CMDLINE"
say "machine:  nproc=$(nproc), kernel $(uname -r), $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ //'), $(awk '/MemTotal/{printf "%.1f GB RAM", $2/1048576}' /proc/meminfo)"
say "sage:     $("$SAGE" --version) at $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')$(cd "$ROOT" && [ -n "$(git status --porcelain 2>/dev/null | head -1)" ] && echo ' (+ uncommitted changes)')${BUILD_NOTE:+, $BUILD_NOTE}"
say "tools:    $(git --version), $(restic version 2>/dev/null | cut -d' ' -f1-2), rsync $(rsync --version | head -1 | awk '{print $3}'), $(zstd --version | sed 's/^\*\*\* //; s/,.*//'), $(ssh -V 2>&1 | cut -d, -f1)"
say "load at start: $(uptime | sed 's/.*load average/load average/')"
say "started:  $(date -u '+%Y-%m-%d %H:%M:%S UTC')"

# ---------------------------------------------------------------- the home
H=$T/home
note "generating a ${SIZE_MB} MB home (seed $SEED)"
if ! "$SAGE" dev gen-home "$H" --size-mb "$SIZE_MB" --seed "$SEED" >"$LOG/gen.out" 2>&1; then
  cat "$LOG/gen.out"; say "sage dev gen-home failed: nothing to measure"; exit 1
fi
HOME_BYTES=$(du -sb "$H" | cut -f1)
HOME_FILES=$(find "$H" -type f | wc -l)
say "home:     $(cat "$LOG/gen.out") ($HOME_FILES files, du -sb $HOME_BYTES)"
say ""

ST=$T/sage-store
G=$T/git.git
R=$T/restic
export RESTIC_PASSWORD=bench-password
export RESTIC_CACHE_DIR=$T/restic-cache
gitc() { git --git-dir="$G" --work-tree="$H" -c user.name=bench -c user.email=bench@localhost -c commit.gpgsign=false "$@"; }
export -f gitc
export G H
git init -q --bare "$G" 2>/dev/null && git --git-dir="$G" config core.bare false || note "git init failed"
restic -r "$R" init >"$LOG/restic-init.log" 2>&1 || note "restic init failed: $(tail -2 "$LOG/restic-init.log")"

# ---------------------------------------------------------------- local: initial
note "initial commit / backup"
measure sage.init "$SAGE" --home "$H" --store "$ST" commit -q
measure git.init bash -c 'gitc add -A && gitc commit -q -m initial'
measure restic.init restic -r "$R" backup -q --host bench "$H"
measure zstd.init bash -c 'tar -cf - -C "$1" . | zstd -1 -T2 -q -o "$2"' _ "$H" "$T/home.tar.zst"
measure cp.init bash -c 'cp -a "$1" "$2" && sync' _ "$H" "$T/cp-copy"

# ---------------------------------------------------------------- local: no change
note "no-change commit / backup (x$REPS)"
rep sage.noop "$REPS" "$SAGE" --home "$H" --store "$ST" commit -q
rep git.noop "$REPS" bash -c 'gitc add -A && { gitc diff --cached --quiet || gitc commit -q -m nochange; }'
rep restic.noop "$REPS" restic -r "$R" backup -q --host bench "$H"

# ---------------------------------------------------------------- local: after appends
note "append to 20 sessions, then commit / backup ($REPS rounds)"
APPENDED=()
for ((i = 1; i <= REPS; i++)); do
  APPENDED+=("$("$SAGE" dev append "$H" --sessions 20 --lines 10 --seed $((SEED * 100 + i)) 2>&1)")
  measure "sage.app.$i" "$SAGE" --home "$H" --store "$ST" commit -q
  measure "git.app.$i" bash -c 'gitc add -A && gitc commit -q -m append'
  measure "restic.app.$i" restic -r "$R" backup -q --host bench "$H"
done
for t in sage git restic; do
  keys=(); for ((i = 1; i <= REPS; i++)); do keys+=("$t.app.$i"); done
  median "$t.app" "${keys[@]}"
done

# ---------------------------------------------------------------- local: checkout / restore
note "checkout / restore into empty dirs"
measure sage.co "$SAGE" --home "$T/co-sage" --store "$ST" checkout HEAD -q
measure sage.co.sync sync
mkdir -p "$T/co-git"
measure git.co bash -c 'GIT_INDEX_FILE="$1/git-restore.index" git --git-dir="$G" --work-tree="$1/co-git" checkout -f -q HEAD -- .' _ "$T"
measure git.co.sync sync
measure restic.co restic -r "$R" restore -q latest --target "$T/co-restic"
measure restic.co.sync sync
mkdir -p "$T/co-zstd"
measure zstd.co bash -c 'zstd -dc -q "$1" | tar -xf - -C "$2"' _ "$T/home.tar.zst" "$T/co-zstd"
measure zstd.co.sync sync
measure cp.co bash -c 'cp -a "$1" "$2" && sync' _ "$T/cp-copy" "$T/co-cp"
for t in sage git restic zstd; do
  if isnum "${V[$t.co]:-}" && isnum "${V[$t.co.sync]:-}"; then
    V[$t.cos]=$(awk -v a="${V[$t.co]}" -v b="${V[$t.co.sync]}" 'BEGIN{printf "%.4f", a+b}')
  else V[$t.cos]=FAIL; fi
done
V[cp.cos]=${V[cp.co]}
[ "${V[sage.co]}" != FAIL ] && check_tree "sage checkout HEAD (into an empty dir)" "$H" "$T/co-sage"
[ "${V[restic.co]}" != FAIL ] && check_tree "restic restore" "$H" "$T/co-restic$H"
[ "${V[git.co]}" != FAIL ] && check_tree "git checkout" "$H" "$T/co-git"
rm -rf "$T/co-sage" "$T/co-git" "$T/co-restic" "$T/co-zstd" "$T/co-cp"

# ---------------------------------------------------------------- local: verify
note "verify / check --read-data"
measure sage.verify "$SAGE" --home "$H" --store "$ST" verify --read-data
measure restic.verify restic -r "$R" check -q --read-data
measure git.verify git --git-dir="$G" fsck --full --no-progress
measure zstd.verify zstd -t -q "$T/home.tar.zst"

# ---------------------------------------------------------------- local: sizes, memory
V[sage.size]=$(du -sb "$ST" | cut -f1)
V[git.size]=$(du -sb "$G" | cut -f1)
V[restic.size]=$(du -sb "$R" | cut -f1)
V[zstd.size]=$(stat -c %s "$T/home.tar.zst" 2>/dev/null || echo FAIL)
V[cp.size]=$(du -sb "$T/cp-copy" 2>/dev/null | cut -f1 || echo FAIL)
V[raw.size]=$(du -sb "$H" | cut -f1)
"$SAGE" --home "$H" --store "$ST" info --json >"$LOG/info.json" 2>&1 || true
SAGE_HOME_BYTES=$(sed -n 's/.*"home_bytes": *\([0-9]*\).*/\1/p' "$LOG/info.json")
SAGE_PACK=$(sed -n 's/.*"pack_bytes": *\([0-9]*\).*/\1/p' "$LOG/info.json")
SAGE_DB=$(sed -n 's/.*"db_bytes": *\([0-9]*\).*/\1/p' "$LOG/info.json")
for t in sage git restic zstd cp; do
  if isnum "${RSS[$t.init]:-}"; then V[$t.rss]=${RSS[$t.init]}; else V[$t.rss]=FAIL; fi
done
RAW_RATIO=$(awk -v a="${SAGE_HOME_BYTES:-0}" -v b="${V[sage.size]}" 'BEGIN{ if (b > 0) printf "%.2f", a/b; else print "n/a" }')

# ---------------------------------------------------------------- ssh: sshd on loopback
note "starting sshd on 127.0.0.1"
K=$T/ssh
mkdir -p "$K" /run/sshd
chmod 700 "$K"
ssh-keygen -q -t ed25519 -N '' -f "$K/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$K/client_key"
cp "$K/client_key.pub" "$K/authorized_keys"
chmod 600 "$K/authorized_keys"
PORT=
for _ in $(seq 1 50); do
  p=$((20000 + RANDOM % 40000))
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then PORT=$p; break; fi
done
SSH_OPTS="ssh -i $K/client_key -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR"
SSH_OK=0
if [ -n "$PORT" ]; then
  # -D: sshd stays a child of this script (killed and reaped on exit, no daemon left behind)
  /usr/sbin/sshd -D -p "$PORT" -o ListenAddress=127.0.0.1 -h "$K/host_key" \
    -o AuthorizedKeysFile="$K/authorized_keys" -o PidFile="$K/sshd.pid" \
    -o PermitRootLogin=prohibit-password -o PasswordAuthentication=no \
    -o StrictModes=no -o UsePAM=no -o MaxStartups=100 -o MaxSessions=100 2>"$LOG/sshd.err" &
  SSHD_PID=$!
  for _ in $(seq 1 30); do
    if $SSH_OPTS -p "$PORT" root@127.0.0.1 true 2>"$LOG/ssh-first.err"; then SSH_OK=1; break; fi
    sleep 0.2
  done
fi
if [ "$SSH_OK" != 1 ]; then
  addnote "FAIL: sshd on 127.0.0.1:${PORT:-?} did not accept a login: $(cat "$LOG/sshd.err" "$LOG/ssh-first.err" 2>/dev/null | tail -3 | tr '\n' ' ')"
fi

cat >"$T/remote-sage" <<EOF
#!/bin/sh
export XDG_DATA_HOME=$T/rxdg
exec $SAGE "\$@"
EOF
chmod +x "$T/remote-sage"
export SAGE_SSH_COMMAND="$SSH_OPTS"
URL=ssh://root@127.0.0.1:$PORT
RR=$T/restic-sftp
RESTIC_SFTP=(restic -r "sftp:root@127.0.0.1:$RR" -o "sftp.command=$SSH_OPTS -p $PORT root@127.0.0.1 -s sftp")
RG=$T/git-remote.git
DO_GITPUSH=1
if [ "$SIZE_MB" -gt 200 ] && [ "$FULL" != 1 ]; then DO_GITPUSH=0; fi

json_bytes() { # sage --json push output -> bytes_sent + bytes_received
  local f=$1 s r
  s=$(sed -n 's/.*"bytes_sent": *\([0-9]*\).*/\1/p' "$f" | head -1)
  r=$(sed -n 's/.*"bytes_received": *\([0-9]*\).*/\1/p' "$f" | head -1)
  if [ -n "$s" ] && [ -n "$r" ]; then echo $((s + r)); else echo FAIL; fi
}
rsync_bytes() { # rsync --stats output -> total bytes sent + received
  local f=$1 s r
  s=$(sed -n 's/^Total bytes sent: *\([0-9,]*\).*/\1/p' "$f" | tr -d ,)
  r=$(sed -n 's/^Total bytes received: *\([0-9,]*\).*/\1/p' "$f" | tr -d ,)
  if [ -n "$s" ] && [ -n "$r" ]; then echo $((s + r)); else echo FAIL; fi
}

if [ "$SSH_OK" = 1 ]; then
  note "ssh: bare connection, initial transfers"
  rep ssh.true 5 $SSH_OPTS -p "$PORT" root@127.0.0.1 true

  "$SAGE" --home "$H" --store "$ST" remote add bk "$URL$T/r-sage-bare" --bare --remote-sage "$T/remote-sage" >"$LOG/remote-add-bk.log" 2>&1 ||
    addnote "FAIL: sage remote add bk: $(tail -2 "$LOG/remote-add-bk.log" | tr '\n' ' ')"
  "$SAGE" --home "$H" --store "$ST" remote add gpu "$URL$T/r-sage-home" --remote-sage "$T/remote-sage" >"$LOG/remote-add-gpu.log" 2>&1 ||
    addnote "FAIL: sage remote add gpu: $(tail -2 "$LOG/remote-add-gpu.log" | tr '\n' ' ')"
  # until the remote store holds the data: a push to a bare store (no home to apply to)
  measure sage.rinit "$SAGE" --home "$H" --store "$ST" push bk --json
  V[sage.rinit.bytes]=$(json_bytes "$LOG/sage.rinit.out")
  # the same push to a remote with a home: store + apply (and the remote's own commit)
  measure sage.rinit.home "$SAGE" --home "$H" --store "$ST" push gpu --json
  V[sage.rinit.home.bytes]=$(json_bytes "$LOG/sage.rinit.home.out")
  if isnum "${V[sage.rinit]}" && isnum "${V[sage.rinit.home]}"; then
    V[sage.apply]=$(awk -v a="${V[sage.rinit.home]}" -v b="${V[sage.rinit]}" 'BEGIN{printf "%.4f", a-b}')
  fi
  measure rsync.rinit rsync -a --stats -e "$SSH_OPTS -p $PORT" "$H/" "root@127.0.0.1:$T/r-rsync/"
  V[rsync.rinit.bytes]=$(rsync_bytes "$LOG/rsync.rinit.out")
  RESTIC_CACHE_DIR=$T/restic-cache-sftp "${RESTIC_SFTP[@]}" init >"$LOG/restic-sftp-init.log" 2>&1 ||
    note "restic sftp init failed: $(tail -2 "$LOG/restic-sftp-init.log")"
  measure restic.rinit env RESTIC_CACHE_DIR="$T/restic-cache-sftp" "${RESTIC_SFTP[@]}" backup -q --host bench "$H"
  if [ "$DO_GITPUSH" = 1 ]; then
    git init -q --bare "$RG"
    measure git.rinit env GIT_SSH_COMMAND="$SSH_OPTS" git --git-dir="$G" push -q "$URL$RG" +HEAD:refs/heads/main
  else
    V[git.rinit]="SKIP:skipped (>200MB)"
  fi

  note "ssh: $REPS rounds of appends to 20 sessions, then push / rsync / backup"
  RAPPENDED=()
  for ((i = 1; i <= REPS; i++)); do
    RAPPENDED+=("$("$SAGE" dev append "$H" --sessions 20 --lines 10 --seed $((SEED * 1000 + i)) 2>&1)")
    measure "sage.rapp.$i" "$SAGE" --home "$H" --store "$ST" push gpu --json
    V[sage.rapp.$i.bytes]=$(json_bytes "$LOG/sage.rapp.$i.out")
    measure "sage.rappbare.$i" "$SAGE" --home "$H" --store "$ST" push bk --json
    measure "rsync.rapp.$i" rsync -a --stats -e "$SSH_OPTS -p $PORT" "$H/" "root@127.0.0.1:$T/r-rsync/"
    V[rsync.rapp.$i.bytes]=$(rsync_bytes "$LOG/rsync.rapp.$i.out")
    measure "restic.rapp.$i" env RESTIC_CACHE_DIR="$T/restic-cache-sftp" "${RESTIC_SFTP[@]}" backup -q --host bench "$H"
    if [ "$DO_GITPUSH" = 1 ]; then
      measure "git.rapp.$i" bash -c 'gitc add -A && gitc commit -q -m append && GIT_SSH_COMMAND="$1" git --git-dir="$G" push -q "$2" +HEAD:refs/heads/main' _ "$SSH_OPTS" "$URL$RG"
    fi
  done
  for t in sage.rapp sage.rappbare rsync.rapp restic.rapp git.rapp; do
    keys=(); bkeys=()
    for ((i = 1; i <= REPS; i++)); do keys+=("$t.$i"); bkeys+=("$t.$i.bytes"); done
    median "$t" "${keys[@]}"
    median "$t.bytes" "${bkeys[@]}"
  done
  [ "$DO_GITPUSH" = 1 ] || V[git.rapp]="SKIP:skipped (>200MB)"
  V[restic.rapp.bytes]="SKIP:n/a"
  V[git.rapp.bytes]="SKIP:n/a"
  if isnum "${V[sage.rapp]}" && isnum "${V[ssh.true]}"; then
    V[sage.rapp.over]=$(awk -v a="${V[sage.rapp]}" -v b="${V[ssh.true]}" 'BEGIN{printf "%.4f", a-b}')
  fi

  note "ssh: no-change sync (x$REPS)"
  rep sage.rnoop "$REPS" "$SAGE" --home "$H" --store "$ST" sync gpu
  rep rsync.rnoop "$REPS" rsync -a -e "$SSH_OPTS -p $PORT" "$H/" "root@127.0.0.1:$T/r-rsync/"
  if isnum "${V[sage.rnoop]}" && isnum "${V[ssh.true]}"; then
    V[sage.rnoop.over]=$(awk -v a="${V[sage.rnoop]}" -v b="${V[ssh.true]}" 'BEGIN{printf "%.4f", a-b}')
  fi
  [ "${V[sage.rinit.home]}" != FAIL ] && check_tree "the remote home after sage push/sync" "$H" "$T/r-sage-home"
  [ "${V[rsync.rinit]}" != FAIL ] && check_tree "the rsync copy" "$H" "$T/r-rsync"
fi

# ---------------------------------------------------------------- table
s=sage
rule
row "LOCAL (ratio = other/sage)" "sage" "git add+commit" "restic backup" "tar|zstd -1 -T2" "cp -a + sync" "target (issue 3)" "result"
rule
row "initial commit / backup" "$(cell s sage.init)" "$(cell s git.init sage.init)" "$(cell s restic.init sage.init)" \
  "$(cell s zstd.init sage.init)" "$(cell s cp.init sage.init)" "sage <= 2x zstd" "$(check 'a <= 2*b' "${V[sage.init]:-}" "${V[zstd.init]:-}")"
row "" "" "" "" "" "" "git >= 4x sage" "$(check 'b >= 4*a' "${V[sage.init]:-}" "${V[git.init]:-}")"
row "" "" "" "" "" "" "restic >= 1.5x sage" "$(check 'b >= 1.5*a' "${V[sage.init]:-}" "${V[restic.init]:-}")"
row "no-change commit / backup (median of $REPS)" "$(cell s sage.noop)" "$(cell s git.noop sage.noop)" "$(cell s restic.noop sage.noop)" \
  "" "" "< 50 ms" "$(check 'a < 0.050' "${V[sage.noop]:-}")"
row "after append to 20 sessions (median of $REPS)" "$(cell s sage.app)" "$(cell s git.app sage.app)" "$(cell s restic.app sage.app)" \
  "" "" "< 100 ms" "$(check 'a < 0.100' "${V[sage.app]:-}")"
row "full checkout / restore into empty dir" "$(cell s sage.co)" "$(cell s git.co sage.co)" "$(cell s restic.co sage.co)" \
  "$(cell s zstd.co sage.co)" "$(cell s cp.co sage.co)" "faster than restic restore" "$(check 'a < b' "${V[sage.co]:-}" "${V[restic.co]:-}")"
row "  same + the sync that follows (info)" "$(cell s sage.cos)" "$(cell s git.cos sage.cos)" "$(cell s restic.cos sage.cos)" \
  "$(cell s zstd.cos sage.cos)" "$(cell s cp.cos sage.cos)" "(info: sage fsyncs, the others don't)" ""
row "verify --read-data / check --read-data" "$(cell s sage.verify)" "$(cell s git.verify sage.verify)" "$(cell s restic.verify sage.verify)" \
  "$(cell s zstd.verify sage.verify)" "" "faster than restic check" "$(check 'a < b' "${V[sage.verify]:-}" "${V[restic.verify]:-}")"
row "store / repo size (du -sb, same history)" "$(cell b sage.size)" "$(cell b git.size sage.size)" "$(cell b restic.size sage.size)" \
  "$(cell b zstd.size sage.size)" "$(cell b cp.size sage.size)" "<= restic repo" "$(check 'a <= b' "${V[sage.size]:-}" "${V[restic.size]:-}")"
row "  raw bytes stored / store size" "${RAW_RATIO}x" "" "" "" "" ">= 6x" "$(check 'a >= 6' "$RAW_RATIO")"
row "peak RSS of the initial commit / backup" "$(cell kb sage.rss)" "$(cell kb git.rss sage.rss)" "$(cell kb restic.rss sage.rss)" \
  "$(cell kb zstd.rss sage.rss)" "$(cell kb cp.rss sage.rss)" "< 512 MB" "$(check 'a < 512*1024' "${V[sage.rss]:-}")"
rule
if [ "$SSH_OK" = 1 ]; then
  row "OVER SSH to 127.0.0.1 (ratio = other/sage)" "sage" "rsync -a -e ssh" "restic (sftp)" "git push" "ssh host true" "target (issue 4)" "result"
  rule
  row "bare connection: ssh host true (median 5)" "" "" "" "" "$(cell s ssh.true)" "" ""
  row "initial push, until the remote store has it" "$(cell s sage.rinit)" "$(cell s rsync.rinit sage.rinit)" "$(cell s restic.rinit sage.rinit)" \
    "$(cell s git.rinit sage.rinit)" "" "restic >= 1.5x sage" "$(check 'b >= 1.5*a' "${V[sage.rinit]:-}" "${V[restic.rinit]:-}")"
  row "  sage: push to a remote with a home" "$(cell s sage.rinit.home)" "" "" "" "" "(store + apply there)" ""
  row "  sage: apply there (the difference)" "$(cell s sage.apply)" "" "" "" "" "(info)" ""
  row "  bytes on the wire, initial" "$(cell b sage.rinit.bytes)" "$(cell b rsync.rinit.bytes sage.rinit.bytes)" "n/a" "n/a" "" "(info)" ""
  row "push after append to 20 sessions (median $REPS)" "$(cell s sage.rapp)" "$(cell s rsync.rapp sage.rapp)" "$(cell s restic.rapp sage.rapp)" \
    "$(cell s git.rapp sage.rapp)" "$(cell s ssh.true)" "sage - ssh < 0.5 s" "$(check 'a < 0.5' "${V[sage.rapp.over]:-}")"
  row "  sage: the same, to the bare store" "$(cell s sage.rappbare)" "" "" "" "" "(info, commit already done)" ""
  row "  bytes on the wire after appends" "$(cell b sage.rapp.bytes)" "$(cell b rsync.rapp.bytes sage.rapp.bytes)" "n/a" "n/a" "" "sage < rsync" \
    "$(check 'a < b' "${V[sage.rapp.bytes]:-}" "${V[rsync.rapp.bytes]:-}")"
  row "no-change sync (median $REPS)" "$(cell s sage.rnoop)" "$(cell s rsync.rnoop sage.rnoop)" "" "" "$(cell s ssh.true)" "sage - ssh < 0.1 s" \
    "$(check 'a < 0.1' "${V[sage.rnoop.over]:-}")"
  rule
fi
printf '%s\n' "${TABLE[@]}"

say ""
say "notes:"
say "- raw bytes: du -sb of the home $(fmt_b "${V[raw.size]}"); sage stores $(fmt_b "${SAGE_HOME_BYTES:-0}") of it (its rules leave out caches and secrets, see 'not copied' below) in $(fmt_b "${SAGE_PACK:-0}") of packs + $(fmt_b "${SAGE_DB:-0}") of database (du -sb of the store counts everything)."
say "- history: every store/repo holds the same history: the initial snapshot, $REPS no-change runs (git commits only when something changed) and $REPS rounds of 'sage dev append --sessions 20 --lines 10'."
say "- local appends: ${APPENDED[0]:-?} (per round); ssh appends: ${RAPPENDED[0]:-n/a} (per round)."
say "- times are wall-clock (date +%s%N around /usr/bin/time); peak RSS is /usr/bin/time %M (the largest process of the pipeline). A 'sync' (untimed) runs before each measurement."
say "- sage's push after appends includes its automatic commit of the home (like rsync, it scans the home). Its 'initial push' is to a --bare remote (store only); the push to a remote with a home also checks out there and the difference is shown as the apply."
say "- git and restic's checkout/restore: 'git checkout -f HEAD -- .' into an empty work tree (separate index), 'restic restore latest --target'."
say "- bytes on the wire: sage --json bytes_sent+bytes_received; rsync --stats 'Total bytes sent' + 'received' (both count the payload, not ssh's framing)."
if [ "$DO_GITPUSH" != 1 ]; then say "- git push over ssh was skipped: SIZE_MB=$SIZE_MB > 200 (FULL=1 to time it; it took 46.8 s at 430 MB in the issue)."; fi
for n in "${NOTES[@]}"; do say "- $n"; done
say "- every run of the repeated rows (the table shows the median):"
for k in sage.noop git.noop restic.noop sage.app git.app restic.app ssh.true sage.rapp sage.rappbare rsync.rapp restic.rapp git.rapp \
  sage.rnoop rsync.rnoop; do
  runs=""
  for ((i = 1; i <= 5; i++)); do
    v=${V[$k.$i]:-}
    [ -n "$v" ] || continue
    if isnum "$v"; then runs="$runs $(fmt_s "$v"),"; else runs="$runs $v,"; fi
  done
  if [ -n "$runs" ]; then say "    $k:${runs%,}"; fi
done
if [ ${#FAILS[@]} -gt 0 ]; then
  say ""
  say "FAILURES (each row depending on them says FAIL):"
  for f in "${FAILS[@]}"; do
    k=${f%% *}
    say "* $f"
    tail -n 5 "$LOG/$k.err" 2>/dev/null | sed 's/^/    /'
  done
fi
say ""
say "load at end: $(uptime | sed 's/.*load average/load average/')"
say "finished: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
