# Receives toolchain tarball {{file}} ({{arch}}, {{compiler}}) on stdin into {{envDir}}, unless a file of
# that name and sha256 is already there (then stdin is not read: check first with the `check` command and
# send nothing). The sha256 is verified before the file replaces anything.
fk_env_dir={{envDir}}
fk_file="$fk_env_dir/{{file}}"
mkdir -p "$fk_env_dir"
if [ -f "$fk_file" ] && [ "$(fk_sha256 "$fk_file")" = {{sha256}} ]; then
  fk_log "toolchain {{file}} already present"
else
  fk_part="$fk_env_dir/.{{file}}.part.$$"
  cat > "$fk_part"
  fk_got=$(fk_sha256 "$fk_part")
  if [ "$fk_got" != {{sha256}} ]; then
    rm -f "$fk_part"
    fk_die "toolchain {{file}} arrived with sha256 $fk_got, expected {{sha256}}; nothing was replaced, send it again"
  fi
  chmod 0644 "$fk_part"
  mv -f "$fk_part" "$fk_file"
  FK_CHANGED=1
  fk_log "received toolchain {{file}}"
fi
if [ "$(readlink "$fk_env_dir/current-{{arch}}-{{compiler}}.tar.gz" 2>/dev/null || true)" != {{file}} ]; then
  ln -sfn {{file}} "$fk_env_dir/current-{{arch}}-{{compiler}}.tar.gz"
  FK_CHANGED=1
fi
for fk_old in "$fk_env_dir"/{{arch}}-{{compiler}}-*.tar.gz; do
  if [ -f "$fk_old" ] && [ "$fk_old" != "$fk_file" ]; then fk_rm "$fk_old"; fi
done
