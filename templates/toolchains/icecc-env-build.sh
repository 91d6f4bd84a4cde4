#!/bin/sh
# Rendered by fleetkit for node {{node}} ({{arch}}): builds the icecc environment tarballs of this node's
# compilers (gcc/g++ and clang, each when installed, and each installed gcc cross compiler
# <triple>-gcc/<triple>-g++ to another arch) with icecc-create-env, into {{envDir}}.
#
# A tarball is named <stem>-<md5>.tar.gz, where <stem> is <arch>-<compiler> (native) or
# <arch>-gcc-<target> (a cross compiler: runs on <arch>, makes <target> code) and <md5> is
# icecc-create-env's own content hash of the toolchain's files; a rebuild of an unchanged toolchain keeps the
# existing file (its bytes, and so its sha256, stay the same), so nodes that have it are never sent it
# again. current-<stem>.tar.gz links the newest; manifest-<arch> lists `arch compiler target file sha256` per
# line for the distribution. Prints `built <file>` or `unchanged <file>` per compiler. Run as root (by the
# toolchains role's install).
set -eu
umask 022
env_dir={{envDir}}
arch={{arch}}
mkdir -p "$env_dir"
work=$(mktemp -d "$env_dir/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
: > "$work/manifest"

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# build COMPILER TARGET ARGS... : one tarball with `icecc-create-env ARGS...`
build() {
  compiler=$1 target=$2
  shift 2
  if [ "$target" = "$arch" ]; then stem="$arch-$compiler"; else stem="$arch-$compiler-$target"; fi
  if ! (cd "$work" && {{createEnv}} "$@") > "$work/$stem.log" 2>&1; then
    cat "$work/$stem.log" >&2
    echo "fleetkit: error: icecc-create-env failed for $stem (output above)" >&2
    exit 1
  fi
  made=$(sed -n 's/^creating \(.*\.tar\.gz\)$/\1/p' "$work/$stem.log" | tail -n 1)
  if [ -z "$made" ] || [ ! -f "$work/$made" ]; then
    echo "fleetkit: error: icecc-create-env printed no tarball name for $stem" >&2
    exit 1
  fi
  name="$stem-$made"
  if [ -f "$env_dir/$name" ]; then
    rm -f "$work/$made"
    echo "unchanged $name"
  else
    mv "$work/$made" "$env_dir/$name"
    echo "built $name"
  fi
  ln -sfn "$name" "$env_dir/current-$stem.tar.gz"
  for old in "$env_dir/$stem-"*.tar.gz; do
    # Only this stem's files: x86_64-gcc-aarch64-<md5> also starts with the stem x86_64-gcc-.
    rest=${old#"$env_dir/$stem-"}
    case ${rest%.tar.gz} in *[!0-9a-f]*) continue ;; esac
    if [ -f "$old" ] && [ "$old" != "$env_dir/$name" ]; then rm -f "$old"; fi
  done
  printf '%s %s %s %s %s\n' "$arch" "$compiler" "$target" "$name" "$(sha256_of "$env_dir/$name")" >> "$work/manifest"
}

found=0
if command -v gcc >/dev/null 2>&1 && command -v g++ >/dev/null 2>&1; then
  build gcc "$arch" --gcc "$(command -v gcc)" "$(command -v g++)"
  found=1
fi
if command -v clang >/dev/null 2>&1 && command -v clang++ >/dev/null 2>&1; then
  build clang "$arch" --clang "$(command -v clang)"
  found=1
fi
# gcc cross compilers to the fleet's other arches, when installed (e.g. Debian's gcc-aarch64-linux-gnu and
# g++-aarch64-linux-gnu): their tarballs let this arch's daemons compile for that target.
{{#crosses}}
if command -v {{triple}}-gcc >/dev/null 2>&1 && command -v {{triple}}-g++ >/dev/null 2>&1; then
  build gcc {{target}} --gcc "$(command -v {{triple}}-gcc)" "$(command -v {{triple}}-g++)"
fi
{{/crosses}}
if [ "$found" = 0 ]; then
  echo "fleetkit: error: neither gcc/g++ nor clang/clang++ is installed on {{node}}; nothing to pack" >&2
  exit 1
fi
mv "$work/manifest" "$env_dir/manifest-$arch"
