# Make /etc/wsl.conf boot systemd ([boot] systemd=true), keeping every other setting of the file. Prints
# FLEETKIT_WSL_CONF_CHANGED when the file changed: the distro only reads it when WSL restarts.
fk_conf=${FK_WSL_CONF:-/etc/wsl.conf}
fk_src=$fk_conf
[ -f "$fk_src" ] || fk_src=/dev/null
fk_new="$fk_conf.fleetkit-new.$$"
awk '
  /^[ \t]*\[/ {
    if (boot && !done) { print "systemd=true"; done = 1 }
    boot = ($0 ~ /^[ \t]*\[boot\][ \t]*$/)
    print
    next
  }
  boot && /^[ \t]*systemd[ \t]*=/ { if (!done) { print "systemd=true"; done = 1 }; next }
  { print }
  END {
    if (!done) {
      if (!boot) { if (NR > 0) print ""; print "[boot]" }
      print "systemd=true"
    }
  }
' "$fk_src" > "$fk_new"
if cmp -s "$fk_new" "$fk_conf"; then
  rm -f "$fk_new"
else
  chmod 0644 "$fk_new"
  mv -f "$fk_new" "$fk_conf"
  echo FLEETKIT_WSL_CONF_CHANGED
fi
