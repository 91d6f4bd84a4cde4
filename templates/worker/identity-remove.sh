# The task identity (its sudoers rule is a bundle file, removed above): {{slotUser}}, whatever it still runs, and the slot homes under
# {{homeRoot}}, task history and checkouts included. {{home}} stays closed to other users.
{{#linux}}
if id -u {{slotUser}} >/dev/null 2>&1; then
  pkill -KILL -u {{slotUser}} 2>/dev/null || true
  userdel {{slotUser}}
  FK_CHANGED=1
  fk_log "removed user {{slotUser}}"
fi
if getent group {{slotUser}} >/dev/null 2>&1; then groupdel {{slotUser}}; fi
{{/linux}}
{{#macos}}
if dscl . -read /Users/{{slotUser}} >/dev/null 2>&1; then
  pkill -KILL -u {{slotUser}} 2>/dev/null || true
  dscl . -delete /Users/{{slotUser}}
  FK_CHANGED=1
  fk_log "removed user {{slotUser}}"
fi
if dscl . -read /Groups/{{slotUser}} >/dev/null 2>&1; then dscl . -delete /Groups/{{slotUser}}; fi
{{/macos}}
if [ -d {{homeRoot}} ]; then
  rm -rf {{homeRoot}}
  fk_log "removed {{homeRoot}}"
fi
