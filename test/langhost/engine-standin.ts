/**
 * An in-process gRPC stand-in for the two services Pulumi's Node.js language host talks to while a
 * program runs: the engine's ResourceMonitor (resource registrations) and Engine (logs, root resource).
 * It is a test harness, not an engine: it records every registration and answers with the inputs as
 * outputs (the same contract as `pulumi.runtime.setMocks`), so we can prove Pulumi's own harness
 * (`@pulumi/pulumi/cmd/run`) loads and runs `stacks/index.ts` with the options in Pulumi.yaml.
 * Service definitions come from the SDK itself (`@pulumi/pulumi/proto`).
 */
import { createRequire } from "node:module";
import * as grpc from "@grpc/grpc-js";

const require = createRequire(import.meta.url);
const resourceGrpc = require("@pulumi/pulumi/proto/resource_grpc_pb.js");
const resourcePb = require("@pulumi/pulumi/proto/resource_pb.js");
const engineGrpc = require("@pulumi/pulumi/proto/engine_grpc_pb.js");
const enginePb = require("@pulumi/pulumi/proto/engine_pb.js");
const emptyPb = require("google-protobuf/google/protobuf/empty_pb.js");
const structPb = require("google-protobuf/google/protobuf/struct_pb.js");
const providerPb = require("@pulumi/pulumi/proto/provider_pb.js");

/** One `RegisterResource` call as the program sent it. */
export interface Registration {
  type: string;
  name: string;
  urn: string;
  parent: string;
  custom: boolean;
  /** URNs this resource depends on (explicit dependsOn and input dependencies). */
  dependencies: string[];
  /** Inputs as plain JSON (secrets appear as Pulumi's secret envelope). */
  inputs: Record<string, unknown>;
  deleteBeforeReplace: boolean;
  additionalSecretOutputs: string[];
}

/** A running stand-in: addresses to pass as `--monitor` / `--engine`, and what it recorded. */
export interface EngineStandin {
  monitorAddress: string;
  engineAddress: string;
  registrations: Registration[];
  /** Engine log messages (severity: message). */
  logs: string[];
  close(): Promise<void>;
}

type Call<T> = { request: T };
type Callback = (err: grpc.ServiceError | null, value?: unknown) => void;

/**
 * What a provider would add to a resource's outputs after creating it (e.g. a remote.Command's `stdout`),
 * merged over the echoed inputs. Used for normal runs; a preview leaves computed outputs unknown.
 */
export type ProviderOutputs = (type: string, name: string, inputs: Record<string, unknown>) => Record<string, unknown>;

/**
 * Starts the stand-in on 127.0.0.1 (ephemeral ports).
 * @param project project name used to build URNs; @param stack stack name.
 * @param outputs optional {@link ProviderOutputs}; without it every resource answers exactly its inputs.
 * @param invokes optional answers to data-source invokes by token (e.g. `tailscale:index/getDevice:getDevice`);
 *   an invoke it has no answer for fails with UNIMPLEMENTED.
 */
export async function startEngineStandin(
  project: string,
  stack: string,
  outputs?: ProviderOutputs,
  invokes?: Record<string, (args: Record<string, unknown>) => Record<string, unknown>>,
): Promise<EngineStandin> {
  const registrations: Registration[] = [];
  const logs: string[] = [];
  let rootUrn = "";
  const urnOf = (type: string, name: string, parentUrn: string): string => {
    let qualified = type;
    if (parentUrn) {
      const parentType = parentUrn.split("::")[2];
      if (parentType && parentType !== "pulumi:pulumi:Stack") qualified = `${parentType}$${type}`;
    }
    return `urn:pulumi:${stack}::${project}::${qualified}::${name}`;
  };

  const server = new grpc.Server();
  server.addService(resourceGrpc.ResourceMonitorService, {
    supportsFeature(call: Call<any>, cb: Callback) {
      const id: string = call.request.getId();
      // Features this stand-in can honour: it passes values through unchanged.
      const supported = ["secrets", "resourceReferences", "outputValues", "deletedWith", "aliasSpecs"].includes(id);
      cb(null, new resourcePb.SupportsFeatureResponse().setHassupport(supported));
    },
    registerResource(call: Call<any>, cb: Callback) {
      const req = call.request;
      const type: string = req.getType();
      const name: string = req.getName();
      const parent: string = req.getParent();
      const urn = urnOf(type, name, parent);
      const inputs = (req.getObject()?.toJavaScript() ?? {}) as Record<string, unknown>;
      registrations.push({
        type,
        name,
        urn,
        parent,
        custom: req.getCustom(),
        dependencies: req.getDependenciesList(),
        inputs,
        deleteBeforeReplace: req.getDeletebeforereplace(),
        additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
      });
      const res = new resourcePb.RegisterResourceResponse().setUrn(urn);
      if (req.getCustom()) res.setId(`${name}_id`);
      const state = req.getCustom() && outputs ? { ...inputs, ...outputs(type, name, inputs) } : inputs;
      res.setObject(structPb.Struct.fromJavaScript(state as Record<string, any>));
      cb(null, res);
    },
    registerResourceOutputs(_call: Call<any>, cb: Callback) {
      cb(null, new emptyPb.Empty());
    },
    invoke(call: Call<any>, cb: Callback) {
      const tok: string = call.request.getTok();
      const answer = invokes && Object.hasOwn(invokes, tok) ? invokes[tok] : undefined;
      if (!answer) {
        cb({ code: grpc.status.UNIMPLEMENTED, details: `invoke ${tok} is not part of this stand-in` } as grpc.ServiceError);
        return;
      }
      const args = (call.request.getArgs()?.toJavaScript() ?? {}) as Record<string, unknown>;
      cb(null, new providerPb.InvokeResponse().setReturn(structPb.Struct.fromJavaScript(answer(args) as Record<string, any>)));
    },
    registerPackage(_call: Call<any>, cb: Callback) {
      cb(null, new resourcePb.RegisterPackageResponse().setRef(""));
    },
    signalAndWaitForShutdown(_call: Call<any>, cb: Callback) {
      cb(null, new emptyPb.Empty());
    },
  });
  server.addService(engineGrpc.EngineService, {
    log(call: Call<any>, cb: Callback) {
      logs.push(`${call.request.getSeverity()}: ${call.request.getMessage()}`);
      cb(null, new emptyPb.Empty());
    },
    getRootResource(_call: Call<any>, cb: Callback) {
      cb(null, new enginePb.GetRootResourceResponse().setUrn(rootUrn));
    },
    setRootResource(call: Call<any>, cb: Callback) {
      rootUrn = call.request.getUrn();
      cb(null, new enginePb.SetRootResourceResponse());
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  const address = `127.0.0.1:${port}`;
  return {
    monitorAddress: address,
    engineAddress: address,
    registrations,
    logs,
    close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  };
}
