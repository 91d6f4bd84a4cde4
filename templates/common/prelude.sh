# --- fleetkit prelude: helpers shared by every role script (rendered, do not edit on the node) ---
set -eu
umask 022
FK_CHANGED=0

fk_log() { printf 'fleetkit: %s\n' "$*" >&2; }
fk_die() { printf 'fleetkit: error: %s\n' "$*" >&2; exit 1; }

# fk_put PATH MODE OWNER GROUP < content
# Writes PATH atomically (temp file + rename) only when its content differs; fixes mode and owner
# without touching content. Sets FK_CHANGED=1 when the content changed.
fk_put() {
  fk_path=$1 fk_mode=$2 fk_owner=$3 fk_group=$4
  fk_dir=$(dirname "$fk_path")
  [ -d "$fk_dir" ] || mkdir -p "$fk_dir"
  fk_tmp="$fk_dir/.fleetkit-new.$$"
  (umask 077 && cat > "$fk_tmp")
  if [ -f "$fk_path" ] && cmp -s "$fk_tmp" "$fk_path"; then
    rm -f "$fk_tmp"
  else
    chmod "$fk_mode" "$fk_tmp"
    chown "$fk_owner:$fk_group" "$fk_tmp"
    mv -f "$fk_tmp" "$fk_path"
    FK_CHANGED=1
    fk_log "wrote $fk_path"
  fi
  chmod "$fk_mode" "$fk_path"
  chown "$fk_owner:$fk_group" "$fk_path"
}

# fk_rm PATH... : removes files (no error when absent).
fk_rm() {
  for fk_f in "$@"; do
    if [ -e "$fk_f" ] || [ -L "$fk_f" ]; then rm -f "$fk_f"; FK_CHANGED=1; fk_log "removed $fk_f"; fi
  done
}

# fk_read_secrets [--any] NAME... : reads `NAME=value` lines from stdin into FK_SECRET_<NAME> without echoing
# them. Every NAME is required; with --any, at least one of them (the others stay empty).
fk_read_secrets() {
  fk_any=0
  if [ "${1:-}" = --any ]; then fk_any=1; shift; fi
  while IFS= read -r fk_line || [ -n "$fk_line" ]; do
    fk_name=${fk_line%%=*}
    # shellcheck disable=SC2034 # read through eval below
    fk_value=${fk_line#*=}
    for fk_want in "$@"; do
      if [ "$fk_name" = "$fk_want" ]; then eval "FK_SECRET_$fk_name=\$fk_value"; fi
    done
  done
  fk_found=0
  for fk_want in "$@"; do
    eval "fk_have=\${FK_SECRET_$fk_want:-}"
    if [ -n "$fk_have" ]; then
      fk_found=1
    elif [ "$fk_any" = 0 ]; then
      fk_die "secret $fk_want was not given on stdin; set it with pulumi config set --secret"
    fi
  done
  [ "$fk_found" = 1 ] || fk_die "none of the secrets $* was given on stdin; set one of them with pulumi config set --secret"
}

# fk_apt_install PKG... : installs missing Debian packages. Role commands on one node run in parallel
# (Pulumi runs independent resources concurrently), so apt waits for the dpkg lock instead of failing.
fk_apt_install() {
  fk_missing=""
  for fk_p in "$@"; do
    dpkg-query -W -f='${Status}' "$fk_p" 2>/dev/null | grep -q 'install ok installed' || fk_missing="$fk_missing $fk_p"
  done
  if [ -n "$fk_missing" ]; then
    fk_log "apt-get install$fk_missing"
    # One fleetkit apt run at a time: `apt-get update` fails at once on the lists lock a parallel role holds.
    mkdir -p /run/lock
    (
      flock -w 600 8 || exit 1
      DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null
      # shellcheck disable=SC2086 # word splitting of the package list is intended
      DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends $fk_missing >/dev/null
    ) 8>/run/lock/fleetkit-apt.lock
    FK_CHANGED=1
  fi
}

# fk_pacman_install PKG... : installs missing Arch packages.
fk_pacman_install() {
  fk_missing=""
  for fk_p in "$@"; do pacman -Q "$fk_p" >/dev/null 2>&1 || fk_missing="$fk_missing $fk_p"; done
  if [ -n "$fk_missing" ]; then
    fk_log "pacman -S$fk_missing"
    # shellcheck disable=SC2086
    pacman -S --noconfirm --needed $fk_missing >/dev/null
    FK_CHANGED=1
  fi
}

# fk_brew FORMULA... : runs brew as the node user (brew refuses to run as root; scripts run as root).
fk_brew() { sudo -u "$FK_USER" -H env HOMEBREW_NO_AUTO_UPDATE=1 "$FK_BREW" "$@"; }

# fk_brew_install FORMULA : installs a missing Homebrew formula.
fk_brew_install() {
  fk_brew list --formula "$1" >/dev/null 2>&1 && return 0
  fk_log "brew install $1"
  fk_brew install --formula "$1" >/dev/null
  FK_CHANGED=1
}

# fk_pkg_release ROLE PKG... : removes packages no other fleetkit role on this node still lists.
fk_pkg_release() {
  fk_role=$1; shift
  for fk_p in "$@"; do
    fk_used=""
    for fk_m in "$FK_STATE"/roles/*.packages; do
      [ -f "$fk_m" ] || continue
      [ "$fk_m" = "$FK_STATE/roles/$fk_role.packages" ] && continue
      grep -qx "$fk_p" "$fk_m" && fk_used=1
    done
    [ -n "$fk_used" ] && continue
    fk_log "removing package $fk_p"
    case "$FK_FAMILY" in
      debian) dpkg-query -W "$fk_p" >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 purge -y -q "$fk_p" >/dev/null ;;
      arch) pacman -Q "$fk_p" >/dev/null 2>&1 && pacman -Rns --noconfirm "$fk_p" >/dev/null ;;
      macos) fk_brew list --formula "$fk_p" >/dev/null 2>&1 && fk_brew uninstall --formula "$fk_p" >/dev/null ;;
    esac
    FK_CHANGED=1
  done
}

# fk_systemd_unit UNIT : enables UNIT; restarts it when this run changed anything, else starts it if stopped.
fk_systemd_unit() {
  systemctl daemon-reload
  systemctl enable --quiet "$1"
  if [ "$FK_CHANGED" = 1 ]; then
    systemctl restart "$1"
  elif ! systemctl is-active --quiet "$1"; then
    systemctl start "$1"
    FK_CHANGED=1
  fi
}

# fk_systemd_remove UNIT PATH : stops, disables and deletes a unit file fleetkit wrote.
fk_systemd_remove() {
  if systemctl cat "$1" >/dev/null 2>&1; then
    systemctl disable --now --quiet "$1" 2>/dev/null || true
  fi
  fk_rm "$2"
  systemctl daemon-reload
  systemctl reset-failed "$1" 2>/dev/null || true
}

# fk_launchd_daemon LABEL PLIST DOMAIN : (re)loads a launchd job (DOMAIN: system or gui/<uid>).
fk_launchd_daemon() {
  if [ "$FK_CHANGED" = 1 ] || ! launchctl print "$3/$1" >/dev/null 2>&1; then
    launchctl bootout "$3/$1" 2>/dev/null || true
    launchctl bootstrap "$3" "$2"
    launchctl enable "$3/$1"
    FK_CHANGED=1
  fi
}

# fk_launchd_remove LABEL PLIST DOMAIN : unloads a launchd job and deletes its plist.
fk_launchd_remove() {
  launchctl bootout "$3/$1" 2>/dev/null || true
  fk_rm "$2"
}

# fk_download URL SHA256 DEST MODE : fetches URL to DEST only when DEST's sha256 differs; verifies the
# download before it replaces anything, so a bad checksum leaves the previous version in place.
fk_download() {
  fk_url=$1 fk_sum=$2 fk_dest=$3 fk_dmode=$4
  if [ -f "$fk_dest" ] && [ "$(fk_sha256 "$fk_dest")" = "$fk_sum" ]; then return 0; fi
  fk_tmp="$fk_dest.fleetkit-download.$$"
  mkdir -p "$(dirname "$fk_dest")"
  if ! curl -fsSL --retry 3 -o "$fk_tmp" "$fk_url"; then rm -f "$fk_tmp"; fk_die "download failed: $fk_url"; fi
  fk_got=$(fk_sha256 "$fk_tmp")
  if [ "$fk_got" != "$fk_sum" ]; then
    rm -f "$fk_tmp"
    fk_die "checksum mismatch for $fk_url: expected sha256 $fk_sum, got $fk_got; the previous version is untouched (check artifacts in fleet.yaml)"
  fi
  chmod "$fk_dmode" "$fk_tmp"
  mv -f "$fk_tmp" "$fk_dest"
  FK_CHANGED=1
  fk_log "installed $fk_dest"
}

fk_sha256() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d' ' -f1; else shasum -a 256 "$1" | cut -d' ' -f1; fi
}

# fk_finish ROLE HASH PACKAGES... : writes the role marker (bundle hash + packages) and reports the outcome.
fk_finish() {
  fk_role=$1 fk_hash=$2; shift 2
  printf '%s\n' "$fk_hash" | fk_put "$FK_STATE/roles/$fk_role.hash" 0644 root "$FK_ROOT_GROUP"
  : > "$FK_STATE/roles/.$fk_role.packages.new"
  for fk_p in "$@"; do printf '%s\n' "$fk_p" >> "$FK_STATE/roles/.$fk_role.packages.new"; done
  fk_put "$FK_STATE/roles/$fk_role.packages" 0644 root "$FK_ROOT_GROUP" < "$FK_STATE/roles/.$fk_role.packages.new"
  rm -f "$FK_STATE/roles/.$fk_role.packages.new"
  if [ "$FK_CHANGED" = 1 ]; then echo "fleetkit: $fk_role changed"; else echo "fleetkit: $fk_role unchanged"; fi
}

# fk_forget ROLE : removes the role marker at the end of an uninstall.
fk_forget() {
  fk_rm "$FK_STATE/roles/$1.hash" "$FK_STATE/roles/$1.packages"
  echo "fleetkit: $1 removed"
}
# --- end of prelude ---
