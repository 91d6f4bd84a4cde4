# --- fleetkit firewall helpers (nftables); the rules of this role follow them ---
# Every rule lives in fleetkit's own table `inet fleetkit`, in chains and sets named for this role, so roles
# load and remove their rules independently and the node's own ruleset is never touched. A run builds the
# whole role's ruleset in a file and loads it with one `nft -f` (one transaction: never half a ruleset).
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
FK_FW_STATE=${FK_FW_STATE:-/var/lib/fleetkit/firewall}
FK_FW_LOCK=${FK_FW_LOCK:-/run/lock/fleetkit-firewall.lock}

# fk_fw_lookup NAME : NAME's addresses now, one per line (getent ahosts: /etc/hosts, DNS, MagicDNS).
fk_fw_lookup() { timeout 10 getent ahosts "$1" 2>/dev/null | awk '{ print $1 }'; }

# fk_fw_begin : takes the node's firewall lock (roles install in parallel; the last role to leave deletes the
# table) and starts this run's ruleset file and host list.
fk_fw_begin() {
  mkdir -p "$FK_FW_STATE" "$(dirname "$FK_FW_LOCK")"
  chmod 0700 "$FK_FW_STATE"
  exec 9>"$FK_FW_LOCK"
  flock -w 120 9 || { fk_fw_warn "another fleetkit firewall run kept $FK_FW_LOCK for 120 s"; exit 1; }
  fk_fw_tmp=$(mktemp "$FK_FW_STATE/.$FK_FW_ROLE.XXXXXX")
  : >"$fk_fw_tmp.hosts"
  trap 'rm -f "$fk_fw_tmp" "$fk_fw_tmp.hosts"' EXIT
}

# fk_fw LINE : appends one nft command to the ruleset file.
fk_fw() { printf '%s\n' "$1" >>"$fk_fw_tmp"; }

# fk_fw_set NAME SOURCE... : declares the sets NAME-v4 and NAME-v6 (emptied first) holding the sources' addresses.
fk_fw_set() {
  fk_set=$1
  shift
  fk_v4=""
  fk_v6=""
  for fk_src in "$@"; do
    for fk_ad in $(fk_fw_addrs "$fk_src"); do
      case $fk_ad in
        *:*) fk_v6="$fk_v6${fk_v6:+, }$fk_ad" ;;
        *) fk_v4="$fk_v4${fk_v4:+, }$fk_ad" ;;
      esac
    done
  done
  for fk_fam in 4 6; do
    fk_fw "add set inet fleetkit $fk_set-v$fk_fam { type ipv${fk_fam}_addr; flags interval; auto-merge; }"
    fk_fw "flush set inet fleetkit $fk_set-v$fk_fam"
    eval "fk_el=\$fk_v$fk_fam"
    [ -z "$fk_el" ] || fk_fw "add element inet fleetkit $fk_set-v$fk_fam { $fk_el }"
  done
}

# fk_fw_commit CHAIN... : loads the ruleset when it differs from the one last loaded or one of the role's
# chains is missing (someone flushed the ruleset); prints `changed` or `unchanged`. A ruleset nft refuses
# stops the run with nft's message, and the previous rules stay in force.
fk_fw_commit() {
  fk_fw_file="$FK_FW_STATE/$FK_FW_ROLE.nft"
  fk_live=1
  for fk_c in "$@"; do nft list chain inet fleetkit "$fk_c" >/dev/null 2>&1 || fk_live=0; done
  if [ "$fk_live" = 1 ] && [ -f "$fk_fw_file" ] && cmp -s "$fk_fw_tmp" "$fk_fw_file"; then
    mv -f "$fk_fw_tmp.hosts" "$FK_FW_STATE/$FK_FW_ROLE.hosts"
    echo unchanged
    return 0
  fi
  nft -f "$fk_fw_tmp" || { fk_fw_warn "nft refused this role's rules (above); the previous rules stay in force"; exit 1; }
  chmod 0600 "$fk_fw_tmp"
  mv -f "$fk_fw_tmp" "$fk_fw_file"
  mv -f "$fk_fw_tmp.hosts" "$FK_FW_STATE/$FK_FW_ROLE.hosts"
  echo changed
}

# At boot (`--boot`, before the network and the role's services start) the last loaded ruleset is loaded
# again as it is, without name lookups; the refresh timer looks the names up again a minute later.
fk_fw_boot() {
  if [ "${1:-}" = --boot ] && [ -f "$FK_FW_STATE/$FK_FW_ROLE.nft" ]; then
    nft -f "$FK_FW_STATE/$FK_FW_ROLE.nft"
    echo loaded
    exit 0
  fi
}
# --- end of firewall helpers ---
