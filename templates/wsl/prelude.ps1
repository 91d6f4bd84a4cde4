# --- fleetkit PowerShell prelude: helpers for Windows host scripts (rendered, do not edit on the node) ---
# Mirrors templates/common/prelude.sh: secrets arrive on stdin as NAME=value lines, markers live in
# $env:ProgramData\fleetkit\roles, the last line is "fleetkit: <role> changed|unchanged|removed".
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$script:FkChanged = $false
$script:FkSecrets = @{}
$script:FkState = Join-Path $env:ProgramData 'fleetkit'

function Fk-Log([string]$Message) { [Console]::Error.WriteLine("fleetkit: $Message") }
function Fk-Die([string]$Message) { [Console]::Error.WriteLine("fleetkit: error: $Message"); exit 1 }

# Fk-ReadSecrets [-Any] NAMES : reads NAME=value lines from stdin into $script:FkSecrets, never echoing them.
function Fk-ReadSecrets([string[]]$Names, [switch]$Any) {
  while ($null -ne ($line = [Console]::In.ReadLine())) {
    $line = $line.TrimEnd("`r")
    $i = $line.IndexOf('=')
    if ($i -gt 0 -and $Names -contains $line.Substring(0, $i)) { $script:FkSecrets[$line.Substring(0, $i)] = $line.Substring($i + 1) }
  }
  $found = @($Names | Where-Object { $script:FkSecrets[$_] })
  if (-not $Any) {
    foreach ($n in $Names) { if (-not $script:FkSecrets[$n]) { Fk-Die "secret $n was not given on stdin; set it with pulumi config set --secret" } }
  } elseif ($found.Count -eq 0) {
    Fk-Die "none of the secrets $($Names -join ', ') was given on stdin; set one of them with pulumi config set --secret"
  }
}

# Native programs get their arguments as one array (Fk-Run EXE @('a', '--b')): PowerShell takes a bare
# `--` or `-x` written after a function name as its own parameter syntax (and Windows PowerShell 5.1 drops
# a bare `--` even before native programs), while array elements are passed on verbatim.

# Fk-Run EXE ARGV : runs a native program and stops the script when it fails.
function Fk-Run([string]$Exe, [string[]]$Argv) {
  & $Exe @Argv
  if ($LASTEXITCODE -ne 0) { Fk-Die "$Exe $($Argv -join ' ') failed with exit code $LASTEXITCODE" }
}

# Fk-Capture EXE ARGV : runs a native program, returns its stdout lines, drops its stderr; check
# $LASTEXITCODE after. (Windows PowerShell 5.1 turns redirected native stderr into errors under 'Stop'.)
function Fk-Capture([string]$Exe, [string[]]$Argv) {
  $ErrorActionPreference = 'Continue'
  & $Exe @Argv 2>$null
}

# Fk-Finish ROLE HASH : writes the role marker and reports the outcome.
function Fk-Finish([string]$Role, [string]$Hash) {
  $dir = Join-Path $script:FkState 'roles'
  New-Item -ItemType Directory -Force -Path $dir | Out-Null
  Set-Content -Path (Join-Path $dir "$Role.hash") -Value $Hash -Encoding ascii
  if ($script:FkChanged) { Write-Output "fleetkit: $Role changed" } else { Write-Output "fleetkit: $Role unchanged" }
}

# Fk-Forget ROLE : removes the role marker at the end of an uninstall.
function Fk-Forget([string]$Role) {
  Remove-Item -Force -ErrorAction SilentlyContinue -Path (Join-Path (Join-Path $script:FkState 'roles') "$Role.hash")
  Write-Output "fleetkit: $Role removed"
}
# --- end of prelude ---
