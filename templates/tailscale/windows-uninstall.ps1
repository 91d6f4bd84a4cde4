# --- Tailscale off the Windows host: leave the tailnet (best effort), then remove the winget package ---
$FkTailscale = Join-Path $env:ProgramFiles 'Tailscale\tailscale.exe'
if (Test-Path $FkTailscale) {
  Fk-Capture $FkTailscale @('logout') | Out-Null
  if ($LASTEXITCODE -ne 0) { Fk-Log 'tailscale logout failed; remove {{hostname}} in the Tailscale admin console' }
  $winget = Get-Command winget.exe -ErrorAction SilentlyContinue
  if ($winget) {
    Fk-Run $winget.Source @('uninstall', '--id', 'Tailscale.Tailscale', '-e', '--silent', '--accept-source-agreements', '--disable-interactivity')
  } else {
    Fk-Log 'winget.exe not on PATH: uninstall Tailscale from Settings > Apps'
  }
  $script:FkChanged = $true
}
