# The node's queue token (secret queueToken) into {{tokenFile}}: 0600, owned by {{user}}, who runs the worker.
fk_tok=${FK_SECRET_queueToken:-}
case $fk_tok in
  *[!A-Za-z0-9_-]*) fk_die "secret queueToken holds characters other than letters, digits, _ and -; set it with pulumi config set --secret" ;;
esac
[ "${#fk_tok}" -ge 16 ] || fk_die "secret queueToken is shorter than 16 characters; set the node's token with pulumi config set --secret"
mkdir -p {{configDir}}
fk_tok_tmp=$(mktemp {{configDir}}/.token.XXXXXX)
printf '%s\n' "$fk_tok" > "$fk_tok_tmp"
fk_put {{tokenFile}} 0600 {{user}} {{group}} < "$fk_tok_tmp"
rm -f "$fk_tok_tmp"
