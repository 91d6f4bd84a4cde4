/**
 * What `fleet status` asks a node about Tailscale: tailscaled's BackendState from `tailscale status --json`
 * (`Running` = up; tailscale(1) "status"), or `missing` without the CLI. On a windows-wsl node the host side
 * runs Tailscale (the distro shares its network), so the Windows CLI is asked there.
 */
import type { RoleProbe } from "../types.js";

/** The tailscale role's probe: record `tailscale STATE`. */
export const probe: RoleProbe<string> = {
  script: (_fleet, _node, target) =>
    target !== "node"
      ? []
      : [
          "if command -v tailscale >/dev/null 2>&1; then",
          "  fk_ts=$(tailscale status --json 2>/dev/null | sed -n 's/^[[:space:]]*\"BackendState\":[[:space:]]*\"\\([A-Za-z]*\\)\".*/\\1/p' | head -n1)",
          "  echo \"tailscale\t${fk_ts:-unknown}\"",
          "else echo \"tailscale${T}missing\"; fi",
        ],
  windowsHostScript: () => [
    "$ts = (Get-Command tailscale.exe).Source",
    "if (-not $ts) { $c = Join-Path $env:ProgramFiles 'Tailscale\\tailscale.exe'; if (Test-Path -LiteralPath $c) { $ts = $c } }",
    "if ($ts) {",
    "  $st = ((& $ts @('status', '--json') | Out-String) | ConvertFrom-Json).BackendState",
    "  if (-not $st) { $st = 'unknown' }",
    "  Write-Output ('tailscale' + $T + $st)",
    "} else { Write-Output ('tailscale' + $T + 'missing') }",
  ],
  parse: (f) => (f.length === 1 ? f[0] : undefined),
  judge: (state) => (state !== undefined && state !== "Running" ? [`tailscale is ${state}`] : []),
};
