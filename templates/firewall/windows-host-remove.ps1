# --- Firewall: the fleetkit-* allow rules for node {{node}}'s services in WSL go with the role that made them ---
Get-NetFirewallRule -Name 'fleetkit-*' -ErrorAction SilentlyContinue | ForEach-Object { Remove-NetFirewallRule -Name $_.Name }
if (Get-Command Get-NetFirewallHyperVRule -ErrorAction SilentlyContinue) {
  Get-NetFirewallHyperVRule -Name 'fleetkit-*' -ErrorAction SilentlyContinue | ForEach-Object { Remove-NetFirewallHyperVRule -Name $_.Name }
}
