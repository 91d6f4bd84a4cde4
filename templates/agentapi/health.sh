# Health: AgentAPI answers GET /status (`stable` or `running`) once it has started Claude.
fk_i=0
until curl -fsS -o /dev/null http://127.0.0.1:{{port}}/status; do
  fk_i=$((fk_i + 1))
  [ "$fk_i" -le 60 ] || fk_die "AgentAPI did not answer GET /status on port {{port}} within 60 s; see {{logHint}}"
  sleep 1
done
fk_log "AgentAPI answers on port {{port}}"
