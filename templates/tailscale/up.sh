# Join the tailnet as {{hostname}}, unless tailscaled is already Running under that name (no re-auth).
# The auth key reaches tailscale through a 0600 temp file (--auth-key=file:PATH), never a command line.
fk_ts={{tailscale}}
fk_ts_state() { "$fk_ts" status --json --peers=false 2>/dev/null | tr -d ' \t\r\n' || true; }
fk_i=0
fk_st=$(fk_ts_state)
while :; do
  case $fk_st in *'"BackendState":"'*) break ;; esac
  fk_i=$((fk_i + 1))
  [ "$fk_i" -le 30 ] || fk_die "tailscaled did not answer within 30 s; see {{logHint}}"
  sleep 1
  fk_st=$(fk_ts_state)
done
case $fk_st in
  *'"BackendState":"Running"'*'"HostName":"{{hostname}}"'* | *'"HostName":"{{hostname}}"'*'"BackendState":"Running"'*)
    fk_log "tailscale: already up as {{hostname}}" ;;
  *'"BackendState":"Running"'*)
    fk_log "tailscale: renaming this machine to {{hostname}}"
    "$fk_ts" set --hostname={{hostname}}
    FK_CHANGED=1 ;;
  *)
    fk_key=$(mktemp "${TMPDIR:-/tmp}/fleetkit-tskey.XXXXXX")
    trap 'rm -f "$fk_key"' EXIT
    # shellcheck disable=SC2154 # set by fk_read_secrets
    printf '%s\n' "$FK_SECRET_tailscaleAuthKey" > "$fk_key"
    fk_log "tailscale up --hostname={{hostname}}"
    "$fk_ts" up --auth-key="file:$fk_key" --hostname={{hostname}} --timeout=120s
    rm -f "$fk_key"
    trap - EXIT
    FK_CHANGED=1 ;;
esac
