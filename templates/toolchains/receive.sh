# Usage: {{path}} ARCH COMPILER TARGET FILE SHA256 [check]   (as root)
# Receives toolchain tarball FILE into {{envDir}} from stdin, unless a file of that name and sha256 is already
# there (then stdin is not read: the distribution checks first and sends nothing). With `check` last it only
# prints `present` or `missing` (that file with that sha256 there or not) and changes nothing. The arguments come from
# a builder's manifest, read over SSH: each is checked against the shape roles/toolchains/render.ts
# parseManifest accepts before it is used: FILE is STEM-<md5>.tar.gz, STEM being ARCH-COMPILER (TARGET =
# ARCH) or ARCH-gcc-TARGET (a gcc cross compiler). The sha256 is verified before the file replaces anything;
# then current-STEM.tar.gz links it and older STEM tarballs are removed.
# Prints `fleetkit: toolchains changed` or `fleetkit: toolchains unchanged`.
fk_bad() { fk_die "toolchain receive: $1; nothing was changed (usage: {{path}} ARCH COMPILER TARGET FILE SHA256 [check])"; }
fk_check=
if [ $# -eq 6 ] && [ "$6" = check ]; then fk_check=1; else [ $# -eq 5 ] || fk_bad "expected 5 arguments and an optional check, got $#"; fi
fk_arch=$1 fk_compiler=$2 fk_target=$3 fk_file=$4 fk_sum=$5
# fk_one_of VALUE WORD... : true when VALUE is one of the WORDs
fk_one_of() { fk_v=$1; shift; for fk_w in "$@"; do if [ "$fk_v" = "$fk_w" ]; then return 0; fi; done; return 1; }
fk_one_of "$fk_arch" {{archNames}} || fk_bad "ARCH must be one of {{archList}}"
fk_one_of "$fk_compiler" {{compilers}} || fk_bad "COMPILER must be one of {{compilerList}}"
fk_one_of "$fk_target" {{archNames}} || fk_bad "TARGET must be one of {{archList}}"
if [ "$fk_target" = "$fk_arch" ]; then
  fk_stem="$fk_arch-$fk_compiler"
elif [ "$fk_compiler" = gcc ]; then
  fk_stem="$fk_arch-gcc-$fk_target"
else
  fk_bad "only gcc tarballs are cross compilers: TARGET must be ARCH for $fk_compiler"
fi
fk_md5=${fk_file#"$fk_stem-"}
fk_md5=${fk_md5%.tar.gz}
case $fk_file in "$fk_stem-$fk_md5.tar.gz") ;; *) fk_md5= ;; esac
case $fk_md5 in *[!0-9a-f]* | "") fk_md5= ;; esac
[ ${#fk_md5} -eq 32 ] || fk_bad "FILE must be $fk_stem-<32 hex digits>.tar.gz"
case $fk_sum in *[!0-9a-f]* | "") fk_sum= ;; esac
[ ${#fk_sum} -eq 64 ] || fk_bad "SHA256 must be 64 lowercase hex digits"

fk_env_dir={{envDir}}
fk_path="$fk_env_dir/$fk_file"
fk_present() { [ -f "$fk_path" ] && [ "$(fk_sha256 "$fk_path")" = "$fk_sum" ]; }
if [ -n "$fk_check" ]; then
  if fk_present; then echo present; else echo missing; fi
  exit 0
fi
mkdir -p "$fk_env_dir"
if fk_present; then
  fk_log "toolchain $fk_file already present"
else
  fk_part="$fk_env_dir/.$fk_file.part.$$"
  cat > "$fk_part"
  fk_got=$(fk_sha256 "$fk_part")
  if [ "$fk_got" != "$fk_sum" ]; then
    rm -f "$fk_part"
    fk_die "toolchain $fk_file arrived with sha256 $fk_got, expected $fk_sum; nothing was replaced, send it again"
  fi
  chmod 0644 "$fk_part"
  mv -f "$fk_part" "$fk_path"
  FK_CHANGED=1
  fk_log "received toolchain $fk_file"
fi
fk_link="$fk_env_dir/current-$fk_stem.tar.gz"
if [ "$(readlink "$fk_link" 2>/dev/null || true)" != "$fk_file" ]; then
  ln -sfn "$fk_file" "$fk_link"
  FK_CHANGED=1
fi
for fk_old in "$fk_env_dir/$fk_stem-"*.tar.gz; do
  # Only this stem's files: x86_64-gcc-aarch64-<md5> also starts with the stem x86_64-gcc-.
  fk_rest=${fk_old#"$fk_env_dir/$fk_stem-"}
  case ${fk_rest%.tar.gz} in *[!0-9a-f]*) continue ;; esac
  if [ -f "$fk_old" ] && [ "$fk_old" != "$fk_path" ]; then fk_rm "$fk_old"; fi
done
if [ "$FK_CHANGED" = 1 ]; then echo "fleetkit: toolchains changed"; else echo "fleetkit: toolchains unchanged"; fi
