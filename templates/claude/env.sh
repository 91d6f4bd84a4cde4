# Credentials from stdin into {{envFile}} (0600, owned by {{user}}): ANTHROPIC_API_KEY and/or
# CLAUDE_CODE_OAUTH_TOKEN (from `claude setup-token`; the macOS Keychain login does not work over SSH).
# Values are checked to be plain tokens so that systemd, launchd's sh and workers read them alike.
for fk_s in "${FK_SECRET_anthropicApiKey:-}" "${FK_SECRET_claudeOauthToken:-}"; do
  case $fk_s in
    *[!A-Za-z0-9_.+/=-]*) fk_die "a Claude secret holds characters other than letters, digits and _.+/=-; check the value given to pulumi config set --secret" ;;
  esac
done
mkdir -p {{configDir}}
fk_env_tmp=$(mktemp {{configDir}}/.claude.env.XXXXXX)
{
  if [ -n "${FK_SECRET_anthropicApiKey:-}" ]; then printf 'ANTHROPIC_API_KEY=%s\n' "$FK_SECRET_anthropicApiKey"; fi
  if [ -n "${FK_SECRET_claudeOauthToken:-}" ]; then printf 'CLAUDE_CODE_OAUTH_TOKEN=%s\n' "$FK_SECRET_claudeOauthToken"; fi
} > "$fk_env_tmp"
fk_put {{envFile}} 0600 {{user}} {{group}} < "$fk_env_tmp"
rm -f "$fk_env_tmp"
# AgentAPI (role agentapi) runs this Claude with these credentials: restart it when anything changed here.
{{#systemd}}
if [ "$FK_CHANGED" = 1 ]; then systemctl try-restart claude-agentapi.service 2>/dev/null || true; fi
{{/systemd}}
{{#launchd}}
if [ "$FK_CHANGED" = 1 ] && launchctl print system/com.claude.agentapi >/dev/null 2>&1; then launchctl kickstart -k system/com.claude.agentapi || true; fi
{{/launchd}}
