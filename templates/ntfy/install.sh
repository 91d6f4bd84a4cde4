# ntfy runs in Docker (the container itself is created by the stack through the node's Docker engine).
command -v docker >/dev/null 2>&1 ||
  fk_die "role ntfy runs ntfy as a Docker container, but docker is not installed on this node; install Docker Engine, let {{user}} use it (docker group), then re-run"
mkdir -p {{configDir}} {{dataDir}}
chmod 0755 {{configDir}}
chmod 0750 {{dataDir}}
# The publish token (secret ntfyToken) is checked for ntfy's token format, which also keeps it from
# breaking out of the YAML string it is written into.
fk_ntfy_bad="secret ntfyToken must be an ntfy access token: tk_ and 29 lower-case letters or digits; set it with pulumi config set --secret"
case ${FK_SECRET_ntfyToken:-} in
  tk_*[!a-z0-9]*) fk_die "$fk_ntfy_bad" ;;
  tk_?????????????????????????????) ;;
  *) fk_die "$fk_ntfy_bad" ;;
esac
