# Firewall: anchor fleetkit/{{role}} is emptied and the role's pf reference released (pf goes off when no one
# else holds one); the last fleetkit role to leave takes fleetkit's anchor line out of /etc/pf.conf.
if [ -f {{state}}/{{role}}.token ]; then pfctl -X "$(cat {{state}}/{{role}}.token)" >/dev/null 2>&1 || true; fi
pfctl -q -a fleetkit/{{role}} -F all 2>/dev/null || true
fk_rm {{state}}/{{role}}.pf {{state}}/{{role}}.hosts {{state}}/{{role}}.token
fk_fw_left=""
for fk_f in {{state}}/*.pf; do [ -e "$fk_f" ] && fk_fw_left=1; done
if [ -z "$fk_fw_left" ] && grep -qxF 'anchor "fleetkit/*"' /etc/pf.conf; then
  grep -vxF -e 'anchor "fleetkit/*"' -e '# fleetkit: the rules of fleetkit roles (anchors fleetkit/<role>), kept by fleetkit' /etc/pf.conf >/etc/pf.conf.fleetkit-new
  cat /etc/pf.conf.fleetkit-new >/etc/pf.conf
  rm -f /etc/pf.conf.fleetkit-new
  pfctl -q -f /etc/pf.conf 2>/dev/null || true
  fk_log "firewall: took fleetkit's anchor line out of /etc/pf.conf"
fi
[ -n "$fk_fw_left" ] || rm -rf {{state}}
rmdir {{scripts}} 2>/dev/null || true
