/**
 * The iceccd role component (`fleetkit:role:Iceccd`): the role's install, and on a Linux node that receives
 * toolchains one local command per builder architecture that streams the builder's tarballs to it
 * (roles/toolchains/component.ts `distributionScript`), re-run when the builder's manifest changes: the
 * script is made from the manifest's fields, and a changed `create` with no `update` runs `create` again
 * (@pulumi/command; no `triggers`, which would repeat the whole manifest in the state of every receiver).
 */
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import type { ArchName, FleetNode } from "../../model/fleet.js";
import { RoleComponent, type RoleArgs } from "../component.js";
import { toolchainReceiveResourceName } from "../naming.js";
import { distributionScript } from "../toolchains/component.js";

/** One builder whose tarballs an iceccd node receives. */
export interface ToolchainSource {
  builder: FleetNode;
  arch: ArchName;
  /** The builder's manifest (its Toolchains component's `manifest`). */
  manifest: pulumi.Input<string>;
  /** Local key file for reaching the builder; undefined = ssh-agent. */
  keyFile?: string;
}

/** Inputs of an iceccd component on a node that receives toolchains. */
export interface IceccdArgs extends RoleArgs {
  /** Builders to receive from (roles/toolchains/render.ts toolchainsPlan: Linux iceccd nodes other than the builder). */
  sources: ToolchainSource[];
  /** Local key file for reaching this node; undefined = ssh-agent. */
  keyFile?: string;
}

/** The `iceccd` role plus, on Linux receivers, the toolchain tarballs of every builder. */
export class Iceccd extends RoleComponent {
  /** One distribution command per builder arch. */
  public readonly toolchains: command.local.Command[];

  constructor(name: string, args: IceccdArgs, opts?: pulumi.ComponentResourceOptions) {
    super(name, args, opts);
    // The apply closes over these, not over `args`, whose bundle texts are garbage once the install exists.
    const { node, keyFile } = args;
    this.toolchains = args.sources.map(
      (src) =>
        new command.local.Command(
          this.childName(toolchainReceiveResourceName(name, src.arch)),
          {
            create: pulumi.output(src.manifest).apply((m) => distributionScript(src.builder, node, m, { builder: { keyFile: src.keyFile }, receiver: { keyFile } })),
            interpreter: ["/bin/sh", "-c"],
            addPreviousOutputInEnv: false,
          },
          this.childOptions({ dependsOn: [this.install] }),
        ),
    );
    this.registerOutputs({ bundleHash: this.bundleHash, stdout: this.stdout });
  }
}
