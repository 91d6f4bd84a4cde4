# server.yml = the public part + the declared publish token, 0600 root (the container runs ntfy as root).
fk_ntfy_tmp=$(mktemp {{configDir}}/.server.XXXXXX)
{
  cat {{publicFile}}
  # The token was checked for ntfy's format (install.sh), so it cannot leave the YAML string.
  printf 'auth-tokens:\n  - "%s:%s:%s"\n' {{publisher}} "${FK_SECRET_ntfyToken:-}" 'fleetkit workers'
} > "$fk_ntfy_tmp"
fk_put {{configFile}} 0600 root {{rootGroup}} < "$fk_ntfy_tmp"
rm -f "$fk_ntfy_tmp"
# ntfy reads its config only at start: restart a running container when anything changed.
if [ "$FK_CHANGED" = 1 ] && docker container inspect {{container}} >/dev/null 2>&1; then
  docker restart {{container}} >/dev/null
  fk_log "restarted container {{container}}"
fi
