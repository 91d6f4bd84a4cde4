# --- WSL2 for node {{node}}: its Linux roles run as root in WSL distro {{distro}}, which must boot systemd ---
$env:WSL_UTF8 = '1'  # wsl.exe prints UTF-16 unless told otherwise; NULs are stripped below for older WSL
$FkDistro = {{distro}}
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
# Fk-IniSet PATH SECTION KEY VALUE : sets KEY=VALUE in [SECTION] of an ini-style file (creating the file or
# section when missing), keeping every other line; returns $true when the file changed.
function Fk-IniSet([string]$Path, [string]$Section, [string]$Key, [string]$Value) {
  $old = ''
  if (Test-Path $Path) { $old = [IO.File]::ReadAllText($Path) }
  $out = [Collections.Generic.List[string]]::new()
  $in = $false
  $done = $false
  foreach ($l in ($old -split "`r?`n")) {
    if ($l -match '^\s*\[') {
      if ($in -and -not $done) { $out.Add("$Key=$Value"); $done = $true }
      $in = $l -match ('^\s*\[' + [regex]::Escape($Section) + '\]\s*$')
    } elseif ($in -and $l -match ('^\s*' + [regex]::Escape($Key) + '\s*=')) {
      if (-not $done) { $out.Add("$Key=$Value"); $done = $true }
      continue
    }
    $out.Add($l)
  }
  while ($out.Count -gt 0 -and $out[$out.Count - 1] -eq '') { $out.RemoveAt($out.Count - 1) }
  if (-not $done) {
    if (-not $in) {
      if ($out.Count -gt 0) { $out.Add('') }
      $out.Add("[$Section]")
    }
    $out.Add("$Key=$Value")
  }
  $new = ($out -join "`r`n") + "`r`n"
  if ($new -ceq $old) { return $false }
  [IO.File]::WriteAllText($Path, $new)
  return $true
}
# Mirrored networking: the distro shares the host's interfaces, Tailscale's included, so the node's
# services in WSL (iceccd, AgentAPI, the worker) are reachable from the tailnet; NAT mode would hide them.
# Per Windows user (the SSH user, who runs the distro); needs Windows 11 22H2+, older WSL falls back to NAT.
$FkMirrored = Fk-IniSet (Join-Path $env:USERPROFILE '.wslconfig') 'wsl2' 'networkingMode' 'mirrored'
if ($FkMirrored) { Fk-Log "set networkingMode=mirrored in $env:USERPROFILE\.wslconfig" }
# The distro-side steps travel base64-encoded: no quoting survives PowerShell, wsl.exe and sh alike.
$FkOut = @(Fk-Capture wsl.exe @('--distribution', $FkDistro, '--user', 'root', '--', 'sh', '-c', 'echo {{setupB64}} | base64 -d | sh'))
if ($LASTEXITCODE -ne 0) { Fk-Die "preparing WSL distro $FkDistro failed (exit code $LASTEXITCODE)" }
if ($FkMirrored -or ($FkOut -contains 'FLEETKIT_WSL_CONF_CHANGED')) {
  Fk-Log 'WSL settings changed: wsl.exe --shutdown so the distro restarts with systemd and mirrored networking'
  Fk-Run wsl.exe @('--shutdown')
  $script:FkChanged = $true
}
$FkInit = "$(Fk-Capture wsl.exe @('--distribution', $FkDistro, '--user', 'root', '--', 'cat', '/proc/1/comm'))".Trim()
if ($FkInit -ne 'systemd') {
  Fk-Die "WSL distro $FkDistro does not run systemd (PID 1 is '$FkInit'): update WSL with wsl.exe --update (systemd needs WSL 0.67.6 or later), then run pulumi up again"
}
