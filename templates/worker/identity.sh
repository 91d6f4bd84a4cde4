# Task identity: the worker runs each queued task as {{slotUser}}, a system user of its own with the home
# {{slotHome}} (0700), so a task cannot read the node's queue token, the queue's tokens file, claude.env or
# {{user}}'s home. {{user}}'s worker starts the run supervisor as {{slotUser}} through sudo; the rule in
# {{sudoers}} allows exactly that (runtime/README.md, "Task identity").
command -v sudo >/dev/null 2>&1 || fk_die "the worker role runs tasks as {{slotUser}} through sudo, which this node lacks: install the sudo package"
if ! id -u {{slotUser}} >/dev/null 2>&1; then
  useradd --system --user-group --home-dir {{slotHome}} --no-create-home --shell /usr/sbin/nologin --comment 'fleetkit worker slot 1 (queued tasks)' {{slotUser}}
  FK_CHANGED=1
  fk_log "created user {{slotUser}}"
fi
