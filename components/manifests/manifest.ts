// The common shapes of the Kubernetes objects the builders return.
import type { ISecret } from "kubernetes-models/v1/Secret";

/** A Kubernetes object as plain data: what builders return, components apply and render writes. */
export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [field: string]: unknown;
}

/**
 * A Secret whose values are `T`: Pulumi secrets when a component applies it, so they stay
 * encrypted in state. Render never writes one (their values exist only in Pulumi state).
 */
export type SecretManifest<T> = Omit<ISecret, "stringData"> & {
  metadata: { name: string };
  stringData: Record<string, T>;
};
