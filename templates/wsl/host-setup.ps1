# --- WSL2 for node {{node}}: its Linux roles run as root in WSL distro {{distro}}, which must boot systemd ---
$env:WSL_UTF8 = '1'  # wsl.exe prints UTF-16 unless told otherwise; NULs are stripped below for older WSL
$FkDistro = {{distroPs}}
Fk-Capture wsl.exe @('--status') | Out-Null
if ($LASTEXITCODE -ne 0) {
  Fk-Log 'enabling WSL2: wsl.exe --install --no-distribution'
  Fk-Capture wsl.exe @('--install', '--no-distribution') | Out-Null
  Fk-Die 'WSL2 was just enabled on this machine (or could not be): restart Windows, then run pulumi up again'
}
function Fk-WslDistros { @(Fk-Capture wsl.exe @('--list', '--quiet')) | ForEach-Object { ($_ -replace "`0", '').Trim() } | Where-Object { $_ } }
if (-not (@(Fk-WslDistros) -contains $FkDistro)) {
  Fk-Log "installing WSL distro $FkDistro"
  Fk-Run wsl.exe @('--set-default-version', '2')
  Fk-Run wsl.exe @('--install', '--distribution', $FkDistro, '--no-launch')
  if (-not (@(Fk-WslDistros) -contains $FkDistro)) {
    Fk-Die "WSL distro $FkDistro is installed but not registered yet: open it once on this machine (wsl.exe -d $FkDistro), then run pulumi up again"
  }
  $script:FkChanged = $true
}
# The distro-side steps travel base64-encoded: no quoting survives PowerShell, wsl.exe and sh alike.
$FkOut = @(Fk-Capture wsl.exe @('--distribution', $FkDistro, '--user', 'root', '--', 'sh', '-c', 'echo {{setupB64}} | base64 -d | sh'))
if ($LASTEXITCODE -ne 0) { Fk-Die "preparing WSL distro $FkDistro failed (exit code $LASTEXITCODE)" }
if ($FkOut -contains 'FLEETKIT_WSL_CONF_CHANGED') {
  Fk-Log '/etc/wsl.conf changed: wsl.exe --shutdown so the distro boots with systemd'
  Fk-Run wsl.exe @('--shutdown')
  $script:FkChanged = $true
}
$FkInit = "$(Fk-Capture wsl.exe @('--distribution', $FkDistro, '--user', 'root', '--', 'cat', '/proc/1/comm'))".Trim()
if ($FkInit -ne 'systemd') {
  Fk-Die "WSL distro $FkDistro does not run systemd (PID 1 is '$FkInit'): update WSL with wsl.exe --update (systemd needs WSL 0.67.6 or later), then run pulumi up again"
}
