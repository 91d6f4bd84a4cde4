# Claude Code itself and its credentials; ~/.claude (the user's history) stays.
fk_rm {{envFile}}
if [ "$(readlink {{link}} 2>/dev/null || true)" = {{claudeExe}} ]; then fk_rm {{link}}; fi
if [ -d {{prefix}} ]; then rm -rf {{prefix}}; fk_log "removed {{prefix}}"; fi
# The fleet skill's file is gone with the other rendered files; its folder goes when nothing else is in it.
rmdir {{skillDir}} 2>/dev/null || true
