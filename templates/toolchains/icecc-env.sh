# shellcheck shell=sh
# Rendered by fleetkit for node {{node}} ({{arch}}): ICECC_VERSION for icecc clients, from the toolchain
# tarballs in {{envDir}} (the current-<arch>-<compiler>.tar.gz links the toolchains distribution writes).
# Source it before compiling:  . {{path}} && make CC="icecc clang" CXX="icecc clang++" -j40
#
# The value is <native tarball>(,<platform>:<tarball>)*: this node's own arch first, then, for clang only,
# the clang tarball of every other arch as platform:tarball (one clang binary targets every arch, so it is a
# cross compiler for this node; a native gcc is not, so gcc jobs stay on {{arch}} nodes). Links are resolved
# here so each tarball keeps its content-hash name, the name iceccd daemons cache it by. With no {{arch}}
# tarball, ICECC_VERSION stays unset and icecc packs the local compiler itself.
fk_icecc_version() {
  fk_iv_native=$(readlink -f "{{envDir}}/current-{{arch}}-$1.tar.gz" 2>/dev/null) || return 0
  [ -f "$fk_iv_native" ] || return 0
  fk_iv=$fk_iv_native
{{#hasOtherArches}}
  if [ "$1" = clang ]; then
{{#otherArches}}
    fk_iv_other=$(readlink -f "{{envDir}}/current-{{other}}-clang.tar.gz" 2>/dev/null) || fk_iv_other=
    if [ -f "$fk_iv_other" ]; then fk_iv="$fk_iv,{{other}}:$fk_iv_other"; fi
{{/otherArches}}
  fi
{{/hasOtherArches}}
  printf '%s\n' "$fk_iv"
}
FLEET_ICECC_VERSION_GCC=$(fk_icecc_version gcc)
FLEET_ICECC_VERSION_CLANG=$(fk_icecc_version clang)
export FLEET_ICECC_VERSION_GCC FLEET_ICECC_VERSION_CLANG
# Default: clang's (it can use every platform's daemons), else gcc's.
ICECC_VERSION=${FLEET_ICECC_VERSION_CLANG:-$FLEET_ICECC_VERSION_GCC}
if [ -n "$ICECC_VERSION" ]; then export ICECC_VERSION; else unset ICECC_VERSION; fi
unset fk_iv fk_iv_native fk_iv_other
