# --- Firewall for node {{node}}'s services in WSL (roles/firewall.ts, templates/firewall/windows-host.ps1) ---
# Mirrored networking receives them on the host's addresses, where Windows Defender Firewall and the Hyper-V
# firewall (WSL's VM creator id) block inbound connections unless a rule allows them. Per service port one allow rule of each, named fleetkit-<service>,
# admits exactly the allowed nodes, looked up on every run; a name that does not resolve is left out, and with
# no address left the rule goes (the port stays closed). Other fleetkit-* rules are removed.
$FkFw = @({{{rules}}})
$FkHv = [bool](Get-Command New-NetFirewallHyperVRule -ErrorAction SilentlyContinue)
function Fk-FwDrop([string]$Name) {
  Remove-NetFirewallRule -Name $Name -ErrorAction SilentlyContinue
  if ($FkHv) { Remove-NetFirewallHyperVRule -Name $Name -ErrorAction SilentlyContinue }
}
$FkFwNames = @($FkFw | ForEach-Object { $_.Name })
foreach ($n in @(Get-NetFirewallRule -Name 'fleetkit-*' -ErrorAction SilentlyContinue | ForEach-Object { $_.Name })) {
  if ($FkFwNames -notcontains $n) { Fk-FwDrop $n; $script:FkChanged = $true }
}
foreach ($r in $FkFw) {
  $a = @(@(foreach ($s in $r.From) {
    if ($s -match '^[0-9a-fA-F:./]+$' -and $s -match '[:/]|^\d+\.\d+\.\d+\.\d+$') { $s; continue }
    try { [Net.Dns]::GetHostAddresses($s) | Where-Object { -not $_.IsIPv4MappedToIPv6 } | ForEach-Object { $_.IPAddressToString -replace '%.*$', '' } }
    catch { Fk-Log "firewall: $s does not resolve; it cannot connect until it does (looked up again on the next install)" }
  }) | Sort-Object -Unique)
  $cur = Get-NetFirewallRule -Name $r.Name -ErrorAction SilentlyContinue
  $have = ''
  if ($cur) { $have = (@(($cur | Get-NetFirewallAddressFilter).RemoteAddress | Sort-Object) -join ',') + ' ' + (($cur | Get-NetFirewallPortFilter).LocalPort -join ',') }
  if ($a.Count -eq 0) {
    Fk-Log "firewall: no allowed node of $($r.Name) resolves; its port stays closed on this host"
    if ($cur) { Fk-FwDrop $r.Name; $script:FkChanged = $true }
  } elseif ($have -ne (($a -join ',') + ' ' + $r.Port)) {
    Fk-FwDrop $r.Name
    New-NetFirewallRule -Name $r.Name -DisplayName "fleetkit $($r.Name)" -Direction Inbound -Action Allow -Protocol $r.Proto -LocalPort $r.Port -RemoteAddress $a -Profile Any | Out-Null
    if ($FkHv) { New-NetFirewallHyperVRule -Name $r.Name -DisplayName "fleetkit $($r.Name)" -Direction Inbound -VMCreatorId '{40E0AC32-46A5-438A-A0B2-2B479E8F2E90}' -Action Allow -Protocol $r.Proto -LocalPorts $r.Port -RemoteAddresses $a | Out-Null }
    Fk-Log "firewall: $($r.Name) admits $($a -join ', ') on $($r.Proto) port $($r.Port)"
    $script:FkChanged = $true
  }
}
