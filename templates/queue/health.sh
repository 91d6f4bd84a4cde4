# Health: the queue answers GET /healthz (no token needed) once it listens on {{listen}}.
fk_i=0
until {{nodeBin}}/node -e 'fetch(process.argv[1], { signal: AbortSignal.timeout(2000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))' {{url}}/healthz; do
  fk_i=$((fk_i + 1))
  [ "$fk_i" -le 60 ] || fk_die "the queue server did not answer GET {{url}}/healthz within 60 s; see journalctl -u fleet-queue"
  sleep 1
done
fk_log "queue server answers on {{url}}"
