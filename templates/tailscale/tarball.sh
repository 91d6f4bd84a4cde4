# Tailscale {{version}} from the static tarball pinned by sha256 in fleet.yaml (downloaded above); binaries go to /usr/local.
fk_ts_tmp=$(mktemp -d)
# The archive holds one directory (tailscale_<version>_<goarch>/) with tailscale, tailscaled and systemd/.
tar -xzf {{tarball}} -C "$fk_ts_tmp" --strip-components=1
for fk_b in tailscale:/usr/local/bin/tailscale tailscaled:/usr/local/sbin/tailscaled; do
  fk_src="$fk_ts_tmp/${fk_b%%:*}"
  fk_dst=${fk_b#*:}
  if ! cmp -s "$fk_src" "$fk_dst"; then
    mkdir -p "$(dirname "$fk_dst")"
    install -m 0755 "$fk_src" "$fk_dst.fleetkit-new"
    mv -f "$fk_dst.fleetkit-new" "$fk_dst"
    FK_CHANGED=1
    fk_log "installed $fk_dst"
  fi
done
rm -rf "$fk_ts_tmp"
