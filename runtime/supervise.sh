#!/bin/sh
# fleetkit run supervisor (runtime/supervise.sh). The worker daemon starts every run through it: Claude for a
# task, and each git step of a task's checkout. It runs as the slot's identity (directly, or through
# `sudo -n -u <slot user>` when the worker has --run-as), so everything a run starts shares its process group,
# and it keeps that group tied to the worker's life: when the worker exits or is killed (SIGKILL included), the
# pipe on this script's stdin closes and the run is stopped. That is what kills a killed worker's Claude
# children where no service manager does (macOS LaunchDaemon, WSL without systemd); with systemd the unit's
# control group does it too. POSIX sh on purpose: a run costs one sh, not a second Node.js (~70 ms of CPU each).
#
# usage: supervise.sh [--dedicated] [--render-from DIR] [--secret-to FILE] CWD COMMAND [ARG...]
#        supervise.sh --dedicated --reap
#   --dedicated    this identity belongs to this slot alone: when a run ends or is stopped, every process of
#                  the identity is killed too (kill -1), which also catches processes that left the group.
#                  Refused unless run by sudo for another, non-root user.
#   --render-from  copy DIR/settings.json and DIR/CLAUDE.md into $HOME/.claude when they differ (remove them
#                  when DIR lacks them): the slot follows the node's current Claude settings on every claim.
#   --secret-to    the first stdin line is a secret (the task's queue token): written to FILE with mode 0600, as
#                  this identity, before the run starts, and removed when it ends. Never in argv or the environment.
#   --reap         kill every leftover process of the identity (a worker that died with runs), print uid=N.
# stdin: with --secret-to, the secret line; then the run's environment as NAME=VALUE lines (under sudo; credentials travel here, never in argv), an
#   empty line, then control lines: TERM (SIGTERM the run's group) or KILL (SIGKILL the group: the run, what
#   it left behind, this supervisor). End of input after this script exited: SIGKILL what is left of the
#   group; while the run goes on (the worker is gone): SIGTERM the group, SIGKILL it 2 seconds later.
# exit status: COMMAND's (128+N when signal N ended it); 125 when the run could not be prepared or started,
#   with one line `fleetkit-supervise: …` on stderr.
# Internal names start with fk_sup_ so that the run's environment cannot overwrite them.
set -u
fk_sup_dedicated=0
fk_sup_render=""
fk_sup_secret_to=""
fk_sup_reap=0
fk_sup_invoker=${SUDO_UID:-}
fk_sup_fail() {
  printf 'fleetkit-supervise: %s\n' "$*" >&2
  exit 125
}
while [ $# -gt 0 ]; do
  case $1 in
    --dedicated) fk_sup_dedicated=1; shift ;;
    --reap) fk_sup_reap=1; shift ;;
    --render-from)
      [ $# -ge 2 ] || fk_sup_fail "--render-from needs a directory"
      fk_sup_render=$2
      shift 2
      ;;
    --secret-to)
      [ $# -ge 2 ] || fk_sup_fail "--secret-to needs a file"
      fk_sup_secret_to=$2
      shift 2
      ;;
    *) break ;;
  esac
done
if [ "$fk_sup_dedicated" = 1 ]; then
  # kill -1 reaches every process this uid may signal: only safe for an identity no one else uses.
  fk_sup_uid=$(id -u)
  [ "$fk_sup_uid" != 0 ] || fk_sup_fail "--dedicated refused: running as root"
  [ -n "$fk_sup_invoker" ] || fk_sup_fail "--dedicated refused: not started by sudo for a slot user"
  [ "$fk_sup_invoker" != "$fk_sup_uid" ] || fk_sup_fail "--dedicated refused: the slot user is the worker's own user"
fi
fk_sup_killall() {
  if [ "$fk_sup_dedicated" = 1 ]; then kill -s KILL -- -1 2>/dev/null || true; fi
}
if [ "$fk_sup_reap" = 1 ]; then
  [ "$fk_sup_dedicated" = 1 ] || fk_sup_fail "--reap needs --dedicated"
  fk_sup_killall
  printf 'uid=%s\n' "$fk_sup_uid"
  exit 0
fi
[ $# -ge 2 ] || fk_sup_fail "usage: supervise.sh [--dedicated] [--render-from DIR] [--secret-to FILE] CWD COMMAND [ARG...]"
fk_sup_cwd=$1
shift
unset SUDO_COMMAND SUDO_USER SUDO_UID SUDO_GID SUDO_HOME MAIL
fk_sup_secret=""
if [ -n "$fk_sup_secret_to" ]; then
  IFS= read -r fk_sup_secret || fk_sup_fail "the worker closed the pipe before sending the secret"
  [ -n "$fk_sup_secret" ] || fk_sup_fail "the worker sent an empty secret"
fi
while :; do
  IFS= read -r fk_sup_line || fk_sup_fail "the worker closed the pipe before the run started"
  [ -n "$fk_sup_line" ] || break
  case $fk_sup_line in
    [A-Za-z_]*=*) ;;
    *) fk_sup_fail "the worker sent a line that is not NAME=VALUE" ;;
  esac
  case ${fk_sup_line%%=*} in
    *[!A-Za-z0-9_]* | fk_sup_*) fk_sup_fail "the worker sent a bad environment variable name" ;;
  esac
  # shellcheck disable=SC2163 # exports the NAME=VALUE line itself
  export "$fk_sup_line"
done
[ -n "${HOME:-}" ] || fk_sup_fail "the run's environment has no HOME"
if [ -n "$fk_sup_render" ]; then
  (umask 077 && mkdir -p "$HOME/.claude") || fk_sup_fail "cannot create $HOME/.claude as $(id -un)"
  for fk_sup_f in settings.json CLAUDE.md; do
    fk_sup_src=$fk_sup_render/$fk_sup_f
    fk_sup_dst=$HOME/.claude/$fk_sup_f
    if [ -f "$fk_sup_src" ]; then
      if ! cmp -s "$fk_sup_src" "$fk_sup_dst"; then
        (umask 077 && cp "$fk_sup_src" "$fk_sup_dst.fleetkit-new" && mv -f "$fk_sup_dst.fleetkit-new" "$fk_sup_dst") ||
          fk_sup_fail "cannot copy $fk_sup_src to $fk_sup_dst as $(id -un)"
      fi
    elif [ -e "$fk_sup_dst" ] || [ -L "$fk_sup_dst" ]; then
      rm -f "$fk_sup_dst" || fk_sup_fail "cannot remove $fk_sup_dst as $(id -un)"
    fi
  done
fi
cd "$fk_sup_cwd" 2>/dev/null || fk_sup_fail "working directory $fk_sup_cwd does not exist or $(id -un) cannot enter it"
case $1 in
  */*) [ -f "$1" ] && [ -x "$1" ] ;;
  *) command -v "$1" >/dev/null 2>&1 ;;
esac || fk_sup_fail "cannot run $1: not found, or not executable by $(id -un)"
if [ -n "$fk_sup_secret_to" ]; then
  # printf is a builtin: the secret reaches the file without ever being an argument of a process.
  (umask 077 && printf '%s\n' "$fk_sup_secret" >"$fk_sup_secret_to.fleetkit-new" && mv -f "$fk_sup_secret_to.fleetkit-new" "$fk_sup_secret_to") ||
    fk_sup_fail "cannot write $fk_sup_secret_to as $(id -un)"
fi
fk_sup_secret=""
# The run shares this script's process group: the worker starts us as a session of our own.
"$@" </dev/null &
fk_sup_child=$!
# Ignored only now: an ignored signal stays ignored across exec, so the run must start before this.
trap '' TERM HUP INT
# The watcher reads the worker's control lines until their end, which comes either because this script
# exited (the worker closes the pipe when it sees that) or because the worker is gone while the run goes on.
# Then it ends whatever the run left behind in the group (with --dedicated: every process of the slot user),
# itself last: at once after a normal end, after SIGTERM and 2 s of grace when the worker is gone. It keeps
# the run's stderr open until then, so the worker sees the run's pipes close only after that cleanup and
# never starts the slot's next run while a kill -1 of this one is still to come.
fk_sup_main=$$
exec 3<&0
(
  while IFS= read -r fk_sup_cmd <&3; do
    case $fk_sup_cmd in
      TERM) kill -s TERM 0 2>/dev/null ;;
      KILL)
        fk_sup_killall
        kill -s KILL 0
        ;;
    esac
  done
  if kill -0 "$fk_sup_main" 2>/dev/null; then
    kill -s TERM 0 2>/dev/null
    sleep 2
  fi
  fk_sup_killall
  kill -s KILL 0
) >/dev/null &
exec 3<&-
wait "$fk_sup_child"
fk_sup_status=$?
# The secret ends with the run (the queue refuses a task token once its lease ends anyway).
if [ -n "$fk_sup_secret_to" ]; then rm -f "$fk_sup_secret_to"; fi
exit "$fk_sup_status"
