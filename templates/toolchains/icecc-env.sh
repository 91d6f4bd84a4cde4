# shellcheck shell=sh
# Rendered by fleetkit for node {{node}} ({{arch}}): ICECC_VERSION for icecc clients, from the toolchain
# tarballs in {{envDir}} (the current-<stem>.tar.gz links the toolchains build and distribution write).
# Source it before compiling:
#   . {{path}} && make CC="icecc gcc" CXX="icecc g++" -j40
#   . {{path}} && make CC="icecc aarch64-linux-gnu-gcc" CXX="icecc aarch64-linux-gnu-g++" -j40   (cross, from x86_64)
# Call compilers by their plain names (gcc, clang, <triple>-gcc): icecc picks tarballs by the name's prefix,
# the part before the last "-", so gcc-12 would find none and compile locally.
#
# icecc reads ICECC_VERSION as comma-separated [platform:]tarball[=prefix] (icecream client/remote.cpp
# parse_icecc_version; README "Cross-Compiling using icecream"): platform is where the tarball's compiler
# runs (default: this machine's); once any entry has "=prefix", entries without one serve only unprefixed
# compilers and "=prefix" entries only compilers named prefix-…; the first entry per platform wins. So one
# value serves native and cross compiles, and no tarball is ever sent for a target it does not make code for.
#
#   FLEET_ICECC_VERSION_GCC    native gcc/g++: this node's {{arch}} gcc tarball, then, per other arch A, the
#                              gcc cross compiler built on A that targets {{arch}} (A:tarball).
#   FLEET_ICECC_VERSION_CLANG  native clang: this node's {{arch}} clang tarball, then every other arch's clang
#                              (A:tarball; icecc passes clang its -target, client/arg.cpp).
{{#others}}
#   FLEET_ICECC_VERSION_{{upper}}  compiles for {{other}} with {{triple}}-gcc/g++: this arch's cross compiler to
#                              {{other}}, then {{other}}'s native gcc ({{other}}:tarball), each ={{triple}}.
{{/others}}
#   ICECC_VERSION              clang's native value (else gcc's) followed by every cross value above; unset
#                              when there is no {{arch}} tarball: icecc then packs the local compiler itself
#                              (set ICECC_VERSION to a FLEET_ICECC_VERSION_<TARGET> value to cross-compile).
# Each value is empty when no tarball of its kind has arrived yet.

# fk_iv_tarball STEM : the tarball current-STEM.tar.gz links to (resolved: daemons cache it by its name), if any.
fk_iv_tarball() {
  fk_iv_f=$(readlink -f "{{envDir}}/current-$1.tar.gz" 2>/dev/null) || return 0
  if [ -f "$fk_iv_f" ]; then printf '%s\n' "$fk_iv_f"; fi
}
# fk_icecc_version gcc|clang : the native value.
fk_icecc_version() {
  fk_iv=$(fk_iv_tarball "{{arch}}-$1")
  [ -n "$fk_iv" ] || return 0
{{#others}}
  if [ "$1" = clang ]; then fk_iv_t=$(fk_iv_tarball {{other}}-clang); else fk_iv_t=$(fk_iv_tarball {{other}}-gcc-{{arch}}); fi
  if [ -n "$fk_iv_t" ]; then fk_iv="$fk_iv,{{other}}:$fk_iv_t"; fi
{{/others}}
  printf '%s\n' "$fk_iv"
}
# fk_icecc_cross TARGET TRIPLE : the value for TRIPLE-gcc compiles.
fk_icecc_cross() {
  fk_iv=
  fk_iv_t=$(fk_iv_tarball "{{arch}}-gcc-$1")
  if [ -n "$fk_iv_t" ]; then fk_iv="$fk_iv_t=$2"; fi
  fk_iv_t=$(fk_iv_tarball "$1-gcc")
  if [ -n "$fk_iv_t" ]; then fk_iv="${fk_iv:+$fk_iv,}$1:$fk_iv_t=$2"; fi
  printf '%s\n' "$fk_iv"
}
FLEET_ICECC_VERSION_GCC=$(fk_icecc_version gcc)
FLEET_ICECC_VERSION_CLANG=$(fk_icecc_version clang)
export FLEET_ICECC_VERSION_GCC FLEET_ICECC_VERSION_CLANG
fk_iv_cross=
{{#others}}
fk_iv_x=$(fk_icecc_cross {{other}} {{triple}})
export "FLEET_ICECC_VERSION_{{upper}}=$fk_iv_x"
if [ -n "$fk_iv_x" ]; then fk_iv_cross="${fk_iv_cross:+$fk_iv_cross,}$fk_iv_x"; fi
{{/others}}
ICECC_VERSION=${FLEET_ICECC_VERSION_CLANG:-$FLEET_ICECC_VERSION_GCC}
if [ -n "$ICECC_VERSION" ]; then
  ICECC_VERSION="$ICECC_VERSION${fk_iv_cross:+,$fk_iv_cross}"
  export ICECC_VERSION
else
  unset ICECC_VERSION
fi
unset fk_iv fk_iv_f fk_iv_t fk_iv_x fk_iv_cross
