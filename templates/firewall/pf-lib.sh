# --- fleetkit firewall helpers (macOS pf); the rules of this role follow them ---
# The role's rules are the pf anchor fleetkit/<role>, evaluated through one `anchor "fleetkit/*"` line this
# script keeps in /etc/pf.conf (after Apple's anchors; a macOS update that rewrites pf.conf gets it back on
# the next run). pf is enabled with a reference-counted `pfctl -E` token of fleetkit's own (pfctl(8) -E/-X),
# so enabling it never fights another program that uses pf, and the last role to leave releases it.
PATH=/usr/bin:/bin:/usr/sbin:/sbin:$PATH
FK_FW_STATE=${FK_FW_STATE:-/usr/local/var/fleetkit/firewall}
FK_FW_PFCONF=${FK_FW_PFCONF:-/etc/pf.conf}
FK_FW_ANCHOR_LINE='anchor "fleetkit/*"'

# fk_fw_lookup NAME : NAME's addresses now, one per line (dscacheutil: the resolver macOS programs use).
fk_fw_lookup() { dscacheutil -q host -a name "$1" 2>/dev/null | awk '$1 == "ip_address:" || $1 == "ipv6_address:" { print $2 }'; }

# fk_fw_begin : takes the node's firewall lock (a directory: macOS has no flock(1)) and starts this run's
# anchor file and host list.
fk_fw_begin() {
  mkdir -p "$FK_FW_STATE"
  chmod 0700 "$FK_FW_STATE"
  fk_i=0
  until mkdir "$FK_FW_STATE/.lock" 2>/dev/null; do
    fk_i=$((fk_i + 1))
    # A lock older than two minutes is left by a run that died; take it over.
    if [ "$fk_i" -gt 120 ]; then fk_fw_warn "taking over the stale lock $FK_FW_STATE/.lock"; break; fi
    sleep 1
  done
  fk_fw_tmp=$(mktemp "$FK_FW_STATE/.$FK_FW_ROLE.XXXXXX")
  : >"$fk_fw_tmp.hosts"
  trap 'rm -f "$fk_fw_tmp" "$fk_fw_tmp.hosts"; rmdir "$FK_FW_STATE/.lock" 2>/dev/null || true' EXIT
}

# fk_fw LINE : appends one line to the anchor file.
fk_fw() { printf '%s\n' "$1" >>"$fk_fw_tmp"; }

# fk_fw_table NAME SOURCE... : a pf table <NAME> (persist: it may be empty) holding the sources' addresses.
fk_fw_table() {
  fk_t=$1
  shift
  fk_el=""
  for fk_src in "$@"; do
    for fk_ad in $(fk_fw_addrs "$fk_src"); do fk_el="$fk_el${fk_el:+, }$fk_ad"; done
  done
  if [ -n "$fk_el" ]; then fk_fw "table <$fk_t> persist { $fk_el }"; else fk_fw "table <$fk_t> persist"; fi
}

# fk_fw_enable : pf.conf evaluates fleetkit's anchors, and pf is on with this role's own reference (its
# token is gone after a reboot, then the role takes a new one).
fk_fw_enable() {
  if ! grep -qxF "$FK_FW_ANCHOR_LINE" "$FK_FW_PFCONF"; then
    printf '# fleetkit: the rules of fleetkit roles (anchors fleetkit/<role>), kept by fleetkit\n%s\n' "$FK_FW_ANCHOR_LINE" >>"$FK_FW_PFCONF"
    pfctl -q -f "$FK_FW_PFCONF"
    fk_fw_force=1
  fi
  fk_tok=$(cat "$FK_FW_STATE/$FK_FW_ROLE.token" 2>/dev/null) || fk_tok=""
  if [ -z "$fk_tok" ] || ! pfctl -s References 2>/dev/null | grep -q "$fk_tok"; then
    fk_tok=$(pfctl -E 2>&1 | sed -n 's/^Token : *\([0-9][0-9]*\).*/\1/p')
    [ -n "$fk_tok" ] || { fk_fw_warn "pfctl -E gave no token: pf could not be enabled"; exit 1; }
    printf '%s\n' "$fk_tok" >"$FK_FW_STATE/$FK_FW_ROLE.token"
  fi
}

# fk_fw_commit : loads the anchor when it differs from the one last loaded, pf.conf was just fixed, or the
# anchor is empty (after a reboot); prints `changed` or `unchanged`. A ruleset pfctl refuses stops the run with
# pfctl's message, and the previous rules stay in force.
fk_fw_commit() {
  fk_fw_force=0
  fk_fw_enable
  fk_fw_file="$FK_FW_STATE/$FK_FW_ROLE.pf"
  if [ "$fk_fw_force" = 0 ] && [ -f "$fk_fw_file" ] && cmp -s "$fk_fw_tmp" "$fk_fw_file" && [ -n "$(pfctl -a "fleetkit/$FK_FW_ROLE" -s rules 2>/dev/null)" ]; then
    mv -f "$fk_fw_tmp.hosts" "$FK_FW_STATE/$FK_FW_ROLE.hosts"
    echo unchanged
    return 0
  fi
  pfctl -q -a "fleetkit/$FK_FW_ROLE" -f "$fk_fw_tmp" || { fk_fw_warn "pfctl refused this role's rules (above); the previous rules stay in force"; exit 1; }
  chmod 0600 "$fk_fw_tmp"
  mv -f "$fk_fw_tmp" "$fk_fw_file"
  mv -f "$fk_fw_tmp.hosts" "$FK_FW_STATE/$FK_FW_ROLE.hosts"
  echo changed
}
# --- end of firewall helpers ---
