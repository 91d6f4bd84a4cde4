# Leave the tailnet first (best effort: an offline node cannot; then remove it in the admin console).
if [ -x {{tailscale}} ]; then
  {{tailscale}} logout >/dev/null 2>&1 || fk_log "tailscale logout failed; remove {{hostname}} in the Tailscale admin console"
fi
