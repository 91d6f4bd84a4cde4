# Task identity: the worker runs each queued task as {{slotUser}}, a hidden system user of its own (and group
# of the same name, not staff) with the home {{slotHome}} (0700), so a task cannot read the node's queue
# token, the queue's tokens file, claude.env or {{user}}'s home. {{user}}'s worker starts the run supervisor
# as {{slotUser}} through sudo; the rule in {{sudoers}} allows exactly that (runtime/README.md, "Task identity").
if ! dscl . -read /Users/{{slotUser}} >/dev/null 2>&1; then
  # One free id in 401-499 (system range, hidden from the login window) for both the user and its group.
  fk_ids_used=$( { dscl . -list /Users UniqueID; dscl . -list /Groups PrimaryGroupID; } | awk '{ print $2 }')
  fk_slot_id=""
  for fk_try in $(seq 401 499); do
    if ! printf '%s\n' "$fk_ids_used" | grep -qx "$fk_try"; then fk_slot_id=$fk_try; break; fi
  done
  [ -n "$fk_slot_id" ] || fk_die "no free user and group id between 401 and 499 for {{slotUser}}"
  dscl . -create /Groups/{{slotUser}}
  dscl . -create /Groups/{{slotUser}} PrimaryGroupID "$fk_slot_id"
  dscl . -create /Groups/{{slotUser}} RealName 'fleetkit worker slot 1'
  dscl . -create /Users/{{slotUser}}
  dscl . -create /Users/{{slotUser}} UniqueID "$fk_slot_id"
  dscl . -create /Users/{{slotUser}} PrimaryGroupID "$fk_slot_id"
  dscl . -create /Users/{{slotUser}} UserShell /usr/bin/false
  dscl . -create /Users/{{slotUser}} NFSHomeDirectory {{slotHome}}
  dscl . -create /Users/{{slotUser}} RealName 'fleetkit worker slot 1 (queued tasks)'
  dscl . -create /Users/{{slotUser}} Password '*'
  dscl . -create /Users/{{slotUser}} IsHidden 1
  FK_CHANGED=1
  fk_log "created user {{slotUser}}"
fi
