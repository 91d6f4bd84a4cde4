# GitHub issue tasks (services.queue.github): the token (secret githubToken) into {{tokenFile}}{{#webhook}} and
# the webhook's secret (secret githubWebhookSecret, the HMAC key GitHub signs each delivery with) into
# {{secretFile}}{{/webhook}}; 0600, owned by {{user}}, who runs the queue. Both are checked before either is
# written. The token is handed to a worker only for a github-issue task's lease.
case ${FK_SECRET_githubToken:-} in
  '' | *[!A-Za-z0-9_]*) fk_die "secret githubToken must be a GitHub token (letters, digits and _, e.g. github_pat_…); set it with pulumi config set --secret fleetkit:githubToken" ;;
esac
{{#webhook}}
case ${FK_SECRET_githubWebhookSecret:-} in
  '' | *[![:graph:]]*) fk_die "secret githubWebhookSecret must be one word of printable characters; set it with pulumi config set --secret fleetkit:githubWebhookSecret" ;;
esac
{{/webhook}}
fk_gh_tmp=$(mktemp {{configDir}}/.github.XXXXXX)
printf '%s\n' "$FK_SECRET_githubToken" > "$fk_gh_tmp"
fk_put {{tokenFile}} 0600 {{user}} {{group}} < "$fk_gh_tmp"
{{#webhook}}
printf '%s\n' "$FK_SECRET_githubWebhookSecret" > "$fk_gh_tmp"
fk_put {{secretFile}} 0600 {{user}} {{group}} < "$fk_gh_tmp"
{{/webhook}}
rm -f "$fk_gh_tmp"
