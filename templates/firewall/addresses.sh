# --- fleetkit firewall helpers shared by nftables and pf: allowed sources to addresses ---
fk_fw_warn() { printf 'fleetkit: firewall %s: %s\n' "$FK_FW_ROLE" "$*" >&2; }

# fk_fw_ip WORD : succeeds when WORD is an IPv4/IPv6 address or CIDR block (used as is, never looked up).
fk_fw_ip() {
  case $1 in
    *:*) case $1 in *[!0-9a-fA-F:./]*) return 1 ;; esac; return 0 ;;
    *[!0-9./]*) return 1 ;;
    *.*.*.*) return 0 ;;
  esac
  return 1
}

# fk_fw_addrs SOURCE : the addresses of one allowed source, one per line. An address or CIDR block is itself;
# a name is looked up now (fk_fw_lookup, per OS), else its addresses from the last run that resolved it are
# kept; a name never resolved gives nothing (that node cannot connect; the port is never opened to
# everyone). Each name is looked up once per run ($fk_fw_tmp.hosts).
fk_fw_addrs() {
  if fk_fw_ip "$1"; then printf '%s\n' "$1"; return 0; fi
  if ! awk -v h="$1" '$1 == h { f = 1 } END { exit !f }' "$fk_fw_tmp.hosts"; then
    fk_a=$(fk_fw_lookup "$1" | grep -Ev '^::ffff:|[^0-9a-fA-F:.]' | sort -u) || fk_a=""
    if [ -z "$fk_a" ]; then
      fk_a=$(awk -v h="$1" '$1 == h && $2 != "-" { print $2 }' "$FK_FW_STATE/$FK_FW_ROLE.hosts" 2>/dev/null) || fk_a=""
      if [ -n "$fk_a" ]; then
        fk_fw_warn "$1 does not resolve now; keeping its last known addresses $(echo $fk_a)"
      else
        fk_fw_warn "$1 does not resolve; it cannot connect here until it does (looked up again every 10 minutes)"
      fi
    fi
    for fk_x in ${fk_a:--}; do printf '%s %s\n' "$1" "$fk_x" >>"$fk_fw_tmp.hosts"; done
  fi
  awk -v h="$1" '$1 == h && $2 != "-" { print $2 }' "$fk_fw_tmp.hosts"
}
# --- end of shared firewall helpers ---
