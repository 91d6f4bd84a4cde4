# The task identity (its sudoers rule is a bundle file, removed above): {{slotUser}}, whatever it still runs, and the slot homes under
# {{homeRoot}}, task history and checkouts included. {{home}} stays closed to other users.
{{#linux}}
if id -u {{q.slotUser}} >/dev/null 2>&1; then
  pkill -KILL -u {{q.slotUser}} 2>/dev/null || true
  userdel {{q.slotUser}}
  FK_CHANGED=1
  fk_log "removed user {{slotUser}}"
fi
if getent group {{q.slotUser}} >/dev/null 2>&1; then groupdel {{q.slotUser}}; fi
{{/linux}}
{{#macos}}
if dscl . -read /Users/{{q.slotUser}} >/dev/null 2>&1; then
  pkill -KILL -u {{q.slotUser}} 2>/dev/null || true
  dscl . -delete /Users/{{q.slotUser}}
  FK_CHANGED=1
  fk_log "removed user {{slotUser}}"
fi
if dscl . -read /Groups/{{q.slotUser}} >/dev/null 2>&1; then dscl . -delete /Groups/{{q.slotUser}}; fi
{{/macos}}
if [ -d {{q.homeRoot}} ]; then
  rm -rf {{q.homeRoot}}
  fk_log "removed {{homeRoot}}"
fi
