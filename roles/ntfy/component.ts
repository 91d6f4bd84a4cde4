/**
 * The ntfy role component (`fleetkit:role:Ntfy`): the role's bundle places `server.yml` (auth-file,
 * `auth-default-access: deny-all`) and the data directories, then the server runs as a Docker container
 * on the node's own engine, reached over SSH (`docker.Provider` host `ssh://user@node`).
 */
import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import { RoleComponent, type RoleArgs } from "../component.js";
import { ntfyResourceNames } from "../naming.js";
import type { NtfyContainerSpec } from "./render.js";

/** Inputs of the ntfy role component: a role plus the container spec and how docker reaches the node. */
export interface NtfyArgs extends RoleArgs {
  /** The container to run (roles/ntfy/render.ts `ntfyContainer`: pinned image, ports, bind mounts, command). */
  container: NtfyContainerSpec;
  /**
   * Docker engine address, `ssh://user@host[:port]`. Docker's SSH transport runs the local `ssh` client,
   * so the node must accept the key from `dockerSshOpts` or the local ssh-agent.
   */
  dockerHost: pulumi.Input<string>;
  /** Extra options for that `ssh` client, e.g. `["-i", "/home/me/.ssh/id_ed25519", "-o", "ConnectTimeout=10"]`. */
  dockerSshOpts?: pulumi.Input<string>[];
}

/**
 * ntfy on one node. Children: `<name>-install` (the bundle: server.yml, directories), `<name>-docker`
 * (provider), `<name>-image` (the pinned image, kept on the node when the role goes so a re-add does not
 * pull again), `<name>-container` (restarted by docker unless stopped). The container waits for the install command, so
 * server.yml is in place before ntfy starts, and is removed before the uninstall script deletes it.
 */
export class Ntfy extends RoleComponent {
  /** The Docker provider for the node's engine. */
  public readonly provider: docker.Provider;
  /** The pinned image. */
  public readonly image: docker.RemoteImage;
  /** The ntfy server container. */
  public readonly container: docker.Container;
  /** Docker's id of the running container. */
  public readonly containerId: pulumi.Output<string>;

  constructor(name: string, args: NtfyArgs, opts?: pulumi.ComponentResourceOptions) {
    super(name, args, opts);
    const names = ntfyResourceNames(name);
    const afterInstall = { dependsOn: [this.install] };
    this.provider = new docker.Provider(
      this.childName(names.provider),
      { host: args.dockerHost, ...(args.dockerSshOpts ? { sshOpts: args.dockerSshOpts } : {}) },
      this.childOptions(afterInstall),
    );
    const onNode = (extra: pulumi.CustomResourceOptions) => this.childOptions({ ...extra, provider: this.provider });
    this.image = new docker.RemoteImage(this.childName(names.image), { name: args.container.image, keepLocally: true }, onNode(afterInstall));
    const spec = args.container;
    this.container = new docker.Container(
      this.childName(names.container),
      {
        name: spec.name,
        image: this.image.imageId,
        command: spec.command,
        ports: spec.ports,
        volumes: spec.volumes,
        restart: spec.restart,
        mustRun: true,
      },
      onNode(afterInstall),
    );
    this.containerId = this.container.id;
    this.registerOutputs({ bundleHash: this.bundleHash, stdout: this.stdout, containerId: this.containerId });
  }
}
