# Firewall: role {{role}}'s chains and sets leave table inet fleetkit (the table goes with the last role's),
# under the lock every fleetkit firewall run takes. Rules of the node's own ruleset are never touched.
if command -v nft >/dev/null 2>&1; then
  mkdir -p /run/lock
  (
    flock -w 120 9 || fk_die "another fleetkit firewall run kept /run/lock/fleetkit-firewall.lock for 120 s"
    printf '%s\n' {{commands}} | nft -f -
    if ! nft list table inet fleetkit | grep -Eq '^[[:space:]]*(chain|set|map|flowtable) '; then
      nft delete table inet fleetkit
      fk_log "firewall: removed table inet fleetkit (no fleetkit role listens here any more)"
    fi
  ) 9>/run/lock/fleetkit-firewall.lock
fi
fk_rm {{state}}/{{role}}.nft {{state}}/{{role}}.hosts
rmdir {{state}} {{scripts}} 2>/dev/null || true
