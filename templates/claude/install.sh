# Claude Code {{version}} into fleetkit's own npm prefix {{prefix}} (root-owned, pinned: AgentAPI scrapes
# Claude's terminal UI, so both move together; settings.json turns the self-updater off). The npm package's
# postinstall copies the native binary of this platform (an optional dependency) over bin/claude.exe, so
# Node.js is needed to install, not to run; the result is checked by running it.
PATH="{{nodeBin}}:$PATH"
export PATH
fk_cc_want='{{version}} (Claude Code)'
fk_cc_have=$({{claudeExe}} --version 2>/dev/null || true)
if [ "$fk_cc_have" != "$fk_cc_want" ]; then
  fk_node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
  [ "$fk_node_major" -ge 18 ] || fk_die "installing Claude Code needs Node.js 18 or later (npm), but this node has $(node --version 2>/dev/null || echo none)"
  fk_log "npm install {{npmPackage}}"
  npm install --global --prefix {{prefix}} --no-audit --no-fund --loglevel=error {{npmPackage}} >/dev/null
  fk_cc_have=$({{claudeExe}} --version 2>/dev/null || true)
  [ "$fk_cc_have" = "$fk_cc_want" ] || fk_die "npm installed {{npmPackage}} but {{claudeExe}} --version printed '$fk_cc_have': its postinstall (which places the native binary) did not run or failed; the package asks for Node.js 22+, this node has $(node --version)"
  FK_CHANGED=1
fi
# SSH commands do not read shell profiles, so the CLI is linked into {{linkDir}} (on every PATH).
mkdir -p {{linkDir}}
if [ "$(readlink {{link}} 2>/dev/null || true)" != {{claudeExe}} ]; then
  ln -sfn {{claudeExe}} {{link}}
  FK_CHANGED=1
fi
# ~/.claude belongs to {{user}}: Claude writes its history and state there.
if [ ! -d {{claudeDir}} ]; then FK_CHANGED=1; fi
mkdir -p {{claudeDir}}
chown {{owner}} {{claudeDir}}
chmod 0700 {{claudeDir}}
# The fleet skill (~/.claude/skills/fleet/SKILL.md) is one of the rendered files; its folders are the user's
# too, so they can add skills of their own beside it.
mkdir -p {{skillDir}}
chown {{owner}} {{claudeDir}}/skills {{skillDir}}
