// The common shape of every Kubernetes object the builders return.

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
