{{^app}}
# GitHub issue tasks (services.queue.github): the token (secret githubToken) into {{tokenFile}}{{#webhook}} and
# the webhook's secret (secret githubWebhookSecret, the HMAC key GitHub signs each delivery with) into
# {{secretFile}}{{/webhook}}; 0600, owned by {{user}}, who runs the queue. Both are checked before either is
# written. The token is handed to a worker only for a github-issue task's lease.
case ${FK_SECRET_githubToken:-} in
  '' | *[!A-Za-z0-9_]*) fk_die "secret githubToken must be a GitHub token (letters, digits and _, e.g. github_pat_…); set it with pulumi config set --secret fleetkit:githubToken" ;;
esac
{{/app}}
{{#app}}
# GitHub issue tasks as GitHub App {{id}} (services.queue.github.app): its private key (secret
# githubAppPrivateKey, the PEM as one line of base64) into {{keyFile}}{{#webhook}} and the webhook's secret (secret
# githubWebhookSecret) into {{secretFile}}{{/webhook}}; 0600, owned by {{user}}, who runs the queue. The queue
# signs the App's JWTs with the key and mints each github-issue task an installation token for the task's
# repository alone; a token file of an earlier install without the App is removed.
case ${FK_SECRET_githubAppPrivateKey:-} in
  '' | *[!A-Za-z0-9+/=]*) fk_die "secret githubAppPrivateKey must be the App's PEM private key; set it with pulumi config set --secret fleetkit:githubAppPrivateKey < app.pem" ;;
esac
{{/app}}
{{#webhook}}
case ${FK_SECRET_githubWebhookSecret:-} in
  '' | *[![:graph:]]*) fk_die "secret githubWebhookSecret must be one word of printable characters; set it with pulumi config set --secret fleetkit:githubWebhookSecret" ;;
esac
{{/webhook}}
fk_gh_tmp=$(mktemp {{configDir}}/.github.XXXXXX)
{{^app}}
printf '%s\n' "$FK_SECRET_githubToken" > "$fk_gh_tmp"
fk_put {{tokenFile}} 0600 {{user}} {{group}} < "$fk_gh_tmp"
{{/app}}
{{#app}}
if ! printf '%s' "$FK_SECRET_githubAppPrivateKey" | base64 -d > "$fk_gh_tmp" 2>/dev/null || ! grep -q '^-----BEGIN [A-Z ]*PRIVATE KEY-----$' "$fk_gh_tmp"; then
  rm -f "$fk_gh_tmp"
  fk_die "secret githubAppPrivateKey does not decode to a PEM private key; set it with pulumi config set --secret fleetkit:githubAppPrivateKey < app.pem"
fi
fk_put {{keyFile}} 0600 {{user}} {{group}} < "$fk_gh_tmp"
fk_rm {{tokenFile}}
{{/app}}
{{#webhook}}
printf '%s\n' "$FK_SECRET_githubWebhookSecret" > "$fk_gh_tmp"
fk_put {{secretFile}} 0600 {{user}} {{group}} < "$fk_gh_tmp"
{{/webhook}}
rm -f "$fk_gh_tmp"
