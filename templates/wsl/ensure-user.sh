# The node user {{user}} owns Claude's files and runs services inside the distro; create it when missing.
if ! id {{user}} >/dev/null 2>&1; then
  useradd --create-home --shell /bin/bash {{user}}
  echo 'fleetkit: created user {{user}} in the WSL distro' >&2
fi
