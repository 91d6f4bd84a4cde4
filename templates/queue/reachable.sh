# Reachable from other nodes: they connect to {{host}}:{{port}}, so the queue must answer on that address, not
# only on loopback (on Debian and Raspberry Pi OS a node's own name resolves to 127.0.1.1 on the node itself).
# The address checked: {{host}} as the node resolves it, when that is not loopback; else the node's tailnet
# address (`tailscale ip -4`) when it runs Tailscale; else its first global address. A connection to the
# node's own address passes its firewall over loopback, so this proves the bind, and roles/reach.ts who may.
fk_q_addr=$(getent ahosts {{host}} 2>/dev/null | awk '$1 !~ /^(127\.|::1$|::ffff:127\.)/ { print $1; exit }') || fk_q_addr=""
{{#tailscale}}
[ -n "$fk_q_addr" ] || fk_q_addr=$({{tailscale}} ip -4 2>/dev/null | head -n1) || fk_q_addr=""
{{/tailscale}}
[ -n "$fk_q_addr" ] || fk_q_addr=$(ip -o addr show scope global 2>/dev/null | awk '{ sub(/\/.*/, "", $4); print $4; exit }') || fk_q_addr=""
[ -n "$fk_q_addr" ] || fk_die "found no address other than loopback for {{host}} on this node; other nodes could not reach the queue"
case $fk_q_addr in *:*) fk_q_url="http://[$fk_q_addr]:{{port}}/healthz" ;; *) fk_q_url="http://$fk_q_addr:{{port}}/healthz" ;; esac
fk_i=0
until {{nodeBin}}/node -e 'fetch(process.argv[1], { signal: AbortSignal.timeout(2000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))' "$fk_q_url"; do
  fk_i=$((fk_i + 1))
  [ "$fk_i" -le 30 ] || fk_die "the queue answers on loopback but not on $fk_q_addr (the address of {{host}} other nodes use) within 30 s; see journalctl -u fleet-queue"
  sleep 1
done
fk_log "queue server answers on $fk_q_addr:{{port}}, where other nodes reach {{host}}"
