/**
 * The tailscale role component (`fleetkit:role:Tailscale`): the role's install joins the node to the
 * tailnet; when the stack manages the tailnet (stacks/tailnet.ts) it also tags the node's device.
 */
import * as pulumi from "@pulumi/pulumi";
import * as tailscale from "@pulumi/tailscale";
import { RoleComponent, type RoleArgs } from "../component.js";
import { deviceTagsResourceName } from "../naming.js";

/** How long the device lookup after a node's join waits for the control plane to list it (Go duration). */
export const DEVICE_WAIT = "120s";

/** The managed tailnet, as one node's tailscale role needs it. */
export interface NodeTailnet {
  /** The stack's Tailscale provider. */
  provider: tailscale.Provider;
  /** The policy resource: the node's tag must be defined before it is applied. */
  policy: tailscale.Acl;
  /** The node's tag (tailnet-policy.ts `nodeTag`). */
  tag: string;
  /**
   * The device's full name, `<node>.<fleet.yaml tailnet>` (the MagicDNS name `tailscale up --hostname`
   * gives it), or the bare node name (looked up as the hostname) when fleet.yaml has no `tailnet`.
   */
  device: string;
}

/** Inputs of the tailscale role component. */
export interface TailscaleArgs extends RoleArgs {
  /** Set when the stack manages the tailnet; undefined = the role is only its install. */
  tailnet?: NodeTailnet;
}

/**
 * Tailscale on one node. Children: `<name>-install`, and with a managed tailnet `<name>-tags`, a
 * `tailscale.DeviceTags` giving the node's device its tag once the install has joined it (the device is
 * looked up with `getDevice`, waiting up to {@link DEVICE_WAIT} for the control plane to list it).
 * A node joined with a tagged key already carries the tag, so this changes nothing there; a node that
 * joined before the stack managed the tailnet (with the pasted key, owned by a person) is re-tagged
 * through the API, without a new join, so the policy's grants apply to it too. The tags are kept on the
 * device when the resource goes (`retainOnDelete`): the Tailscale API cannot turn a tagged device back
 * into a person's, and the uninstall logs the node out anyway. The role's other components wait for
 * this one, so they run once the node has its tag.
 */
export class Tailscale extends RoleComponent {
  /** The device's tags; undefined when the tailnet is not managed. */
  public readonly deviceTags?: tailscale.DeviceTags;

  constructor(name: string, args: TailscaleArgs, opts?: pulumi.ComponentResourceOptions) {
    super(name, args, opts);
    if (args.tailnet) {
      const { provider, policy, tag, device } = args.tailnet;
      const lookup = device.includes(".") ? { name: device } : { hostname: device };
      const found = tailscale.getDeviceOutput({ ...lookup, waitFor: DEVICE_WAIT }, { parent: this, provider, dependsOn: [this.install] });
      this.deviceTags = new tailscale.DeviceTags(
        this.childName(deviceTagsResourceName(name)),
        { deviceId: found.nodeId, tags: [tag] },
        { ...this.childOptions({ provider, dependsOn: [this.install, policy] }), retainOnDelete: true },
      );
    }
    this.registerOutputs({ bundleHash: this.bundleHash, stdout: this.stdout });
  }
}
