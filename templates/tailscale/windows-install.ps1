# --- Tailscale {{version}} on the Windows host (winget package Tailscale.Tailscale), joined as {{hostname}} ---
$FkTailscale = Join-Path $env:ProgramFiles 'Tailscale\tailscale.exe'
$FkTsVersion = {{version}}

# winget is a per-user app alias that is often missing from PATH in SSH sessions; fall back to its package folder.
function Fk-Winget {
  $cmd = Get-Command winget.exe -ErrorAction SilentlyContinue
  if ($cmd) { return $cmd.Source }
  $found = Get-ChildItem -Path (Join-Path $env:ProgramFiles 'WindowsApps') -Filter winget.exe -Recurse -ErrorAction SilentlyContinue |
    Where-Object { $_.DirectoryName -like '*Microsoft.DesktopAppInstaller_*_x64__8wekyb3d8bbwe' } |
    Sort-Object -Property FullName | Select-Object -Last 1
  if (-not $found) { Fk-Die 'winget.exe not found: install App Installer from the Microsoft Store on this machine, then run pulumi up again' }
  return $found.FullName
}

$FkTsHave = ''
if (Test-Path $FkTailscale) { $FkTsHave = "$(Fk-Capture $FkTailscale @('version') | Select-Object -First 1)".Trim() }
if ($FkTsHave -ne $FkTsVersion) {
  Fk-Log "winget install Tailscale.Tailscale $FkTsVersion (installed: '$FkTsHave')"
  Fk-Run (Fk-Winget) @('install', '--id', 'Tailscale.Tailscale', '-e', '--version', $FkTsVersion, '--silent', '--accept-package-agreements', '--accept-source-agreements', '--disable-interactivity')
  if (-not (Test-Path $FkTailscale)) { Fk-Die "winget reported success but $FkTailscale is missing" }
  $script:FkChanged = $true
}

# Wait (bounded) for the Tailscale service to answer, then join unless already Running as {{hostname}}.
$FkTsState = $null
foreach ($i in 1..30) {
  $raw = (Fk-Capture $FkTailscale @('status', '--json', '--peers=false')) -join "`n"
  if ($raw -match '"BackendState"') { $FkTsState = $raw | ConvertFrom-Json; break }
  Start-Sleep -Seconds 1
}
if (-not $FkTsState) { Fk-Die 'the Tailscale service did not answer within 30 s; see Event Viewer > Applications and Services Logs > Tailscale' }
if ($FkTsState.BackendState -eq 'Running' -and $FkTsState.Self.HostName -eq {{hostname}}) {
  Fk-Log 'tailscale: already up as {{hostname}}'
} elseif ($FkTsState.BackendState -eq 'Running') {
  Fk-Log 'tailscale: renaming this machine to {{hostname}}'
  Fk-Run $FkTailscale @('set', '--hostname={{hostname}}')
  $script:FkChanged = $true
} else {
  # The key file sits in the SSH user's own temp folder (ACL: that user, SYSTEM, Administrators) for the
  # duration of one call; tailscale reads it through --auth-key=file:PATH, so it is never on a command line.
  $FkKey = New-TemporaryFile
  try {
    [IO.File]::WriteAllText($FkKey.FullName, $script:FkSecrets['tailscaleAuthKey'])
    Fk-Log 'tailscale up --hostname={{hostname}} --unattended'
    Fk-Run $FkTailscale @('up', "--auth-key=file:$($FkKey.FullName)", '--hostname={{hostname}}', '--unattended', '--timeout=120s')
  } finally {
    Remove-Item -Force -ErrorAction SilentlyContinue -Path $FkKey.FullName
  }
  $script:FkChanged = $true
}
