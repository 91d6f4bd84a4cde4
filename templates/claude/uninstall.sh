# Claude Code itself and its credentials; ~/.claude (the user's history) stays.
fk_rm {{envFile}}
if [ "$(readlink {{linkDir}}/claude 2>/dev/null || true)" = {{prefix}}/bin/claude ]; then fk_rm {{linkDir}}/claude; fi
if [ -d {{prefix}} ]; then rm -rf {{prefix}}; fk_log "removed {{prefix}}"; fi
