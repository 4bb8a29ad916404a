// Node labels that put a model's pods on nodes with its accelerator, per vendor. Each vendor's
// device plugin stack labels GPU nodes with a presence label and a product label; the defaults
// below are those labels, and a resource name not listed needs `gpu.nodeSelector` in config.

export interface AcceleratorLabels {
  /** Labels every node with the accelerator carries (the pod's node selector). */
  present: Record<string, string>;
  /** Label whose value names the accelerator model (what `gpu.product` selects). */
  productLabel: string;
}

const INTEL: AcceleratorLabels = {
  // intel/intel-device-plugins-for-kubernetes deployments/nfd/overlays/node-feature-rules/
  // node-feature-rules.yaml; product: cmd/gpu_plugin/labels.md (gpu.intel.com/product=Max_1550).
  present: { "intel.feature.node.kubernetes.io/gpu": "true" },
  productLabel: "gpu.intel.com/product",
};

/** Vendor defaults by extended resource name. */
export const ACCELERATOR_VENDORS: Record<string, AcceleratorLabels> = {
  // NVIDIA GPU operator / GPU feature discovery: NVIDIA/k8s-device-plugin
  // docs/gpu-feature-discovery/README.md (nvidia.com/gpu.product) and
  // deployments/helm/nvidia-device-plugin/values.yaml (affinity on nvidia.com/gpu.present).
  "nvidia.com/gpu": {
    present: { "nvidia.com/gpu.present": "true" },
    productLabel: "nvidia.com/gpu.product",
  },
  // AMD GPU operator's NodeFeatureRule labels AMD GPU nodes feature.node.kubernetes.io/amd-gpu;
  // ROCm/k8s-device-plugin node labeller: amd.com/gpu.product-name
  // (docs/user-guide/configuration.md).
  "amd.com/gpu": {
    present: { "feature.node.kubernetes.io/amd-gpu": "true" },
    productLabel: "amd.com/gpu.product-name",
  },
  // Intel's GPU plugin registers i915 (older kernels' driver) or xe devices.
  "gpu.intel.com/i915": INTEL,
  "gpu.intel.com/xe": INTEL,
};

/** What a model's `gpu` config says about nodes (the fields `acceleratorNodeSelector` reads). */
export interface GpuNodeConfig {
  resourceName: string;
  product?: string;
  nodeSelector?: Record<string, string>;
  productLabel?: string;
}

/**
 * Node selector for a model's accelerator: `gpu.nodeSelector` or the vendor's presence label,
 * plus the product label (`gpu.productLabel` or the vendor's) when `gpu.product` is set.
 * The config has checked that an unknown vendor brings its own labels.
 */
export function acceleratorNodeSelector(gpu: GpuNodeConfig): Record<string, string> {
  const vendor = ACCELERATOR_VENDORS[gpu.resourceName];
  const productLabel = gpu.productLabel ?? vendor?.productLabel;
  return {
    ...(gpu.nodeSelector ?? vendor?.present ?? {}),
    ...(gpu.product && productLabel ? { [productLabel]: gpu.product } : {}),
  };
}
