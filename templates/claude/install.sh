# Claude Code {{version}} into fleetkit's own npm prefix {{prefix}} (root-owned, pinned: AgentAPI scrapes
# Claude's terminal UI, so both move together; settings.json turns the self-updater off).
PATH="{{nodeBin}}:$PATH"
export PATH
fk_node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
[ "$fk_node_major" -ge 18 ] || fk_die "Claude Code needs Node.js 18 or later, but this node has $(node --version 2>/dev/null || echo none); upgrade the OS release or install a newer nodejs package"
if ! grep -q '"version": "{{version}}"' {{prefix}}/lib/node_modules/@anthropic-ai/claude-code/package.json 2>/dev/null; then
  fk_log "npm install @anthropic-ai/claude-code@{{version}}"
  npm install --global --prefix {{prefix}} --no-audit --no-fund --loglevel=error @anthropic-ai/claude-code@{{version}} >/dev/null
  FK_CHANGED=1
fi
[ -x {{prefix}}/bin/claude ] || fk_die "npm installed @anthropic-ai/claude-code@{{version}} but {{prefix}}/bin/claude is missing"
# SSH commands do not read shell profiles, so the CLI is linked into /usr/local/bin (on every PATH).
mkdir -p /usr/local/bin
if [ "$(readlink /usr/local/bin/claude 2>/dev/null || true)" != {{prefix}}/bin/claude ]; then
  ln -sfn {{prefix}}/bin/claude /usr/local/bin/claude
  FK_CHANGED=1
fi
# ~/.claude belongs to {{user}}: Claude writes its history and state there.
if [ ! -d {{home}}/.claude ]; then FK_CHANGED=1; fi
mkdir -p {{home}}/.claude
chown {{user}}:{{group}} {{home}}/.claude
chmod 0700 {{home}}/.claude
