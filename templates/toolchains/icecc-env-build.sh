#!/bin/sh
# Rendered by fleetkit for node {{node}} ({{arch}}): builds the icecc environment tarballs of this node's
# compilers (gcc/g++ and clang, each when installed) with icecc-create-env, into {{envDir}}.
#
# A tarball is named <arch>-<compiler>-<md5>.tar.gz, where <md5> is icecc-create-env's own content hash of
# the toolchain's files; a rebuild of an unchanged toolchain keeps the existing file (its bytes, and so its
# sha256, stay the same), so nodes that have it are never sent it again. current-<arch>-<compiler>.tar.gz
# links the newest; manifest-<arch> lists `arch compiler file sha256` per line for the distribution.
# Prints `built <file>` or `unchanged <file>` per compiler. Run as root (by the toolchains role's install).
set -eu
umask 022
env_dir={{envDir}}
arch={{arch}}
mkdir -p "$env_dir"
work=$(mktemp -d "$env_dir/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
: > "$work/manifest"

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# build COMPILER ARGS... : one tarball with `icecc-create-env ARGS...`
build() {
  compiler=$1
  shift
  if ! (cd "$work" && {{createEnv}} "$@") > "$work/$compiler.log" 2>&1; then
    cat "$work/$compiler.log" >&2
    echo "fleetkit: error: icecc-create-env failed for $compiler (output above)" >&2
    exit 1
  fi
  made=$(sed -n 's/^creating \(.*\.tar\.gz\)$/\1/p' "$work/$compiler.log" | tail -n 1)
  if [ -z "$made" ] || [ ! -f "$work/$made" ]; then
    echo "fleetkit: error: icecc-create-env printed no tarball name for $compiler" >&2
    exit 1
  fi
  name="$arch-$compiler-$made"
  if [ -f "$env_dir/$name" ]; then
    rm -f "$work/$made"
    echo "unchanged $name"
  else
    mv "$work/$made" "$env_dir/$name"
    echo "built $name"
  fi
  ln -sfn "$name" "$env_dir/current-$arch-$compiler.tar.gz"
  for old in "$env_dir/$arch-$compiler-"*.tar.gz; do
    if [ -f "$old" ] && [ "$old" != "$env_dir/$name" ]; then rm -f "$old"; fi
  done
  printf '%s %s %s %s\n' "$arch" "$compiler" "$name" "$(sha256_of "$env_dir/$name")" >> "$work/manifest"
}

found=0
if command -v gcc >/dev/null 2>&1 && command -v g++ >/dev/null 2>&1; then
  build gcc --gcc "$(command -v gcc)" "$(command -v g++)"
  found=1
fi
if command -v clang >/dev/null 2>&1 && command -v clang++ >/dev/null 2>&1; then
  build clang --clang "$(command -v clang)"
  found=1
fi
if [ "$found" = 0 ]; then
  echo "fleetkit: error: neither gcc/g++ nor clang/clang++ is installed on {{node}}; nothing to pack" >&2
  exit 1
fi
mv "$work/manifest" "$env_dir/manifest-$arch"
