// Kubernetes' own syntax rules for the values the stack config puts into objects, so a value the
// API server would reject fails at config time (before anything is created), not mid-update.
// Each rule is the upstream function named in its comment.
export { parseQuantity } from "@vllm-fleet/policies/kube";

// k8s.io/apimachinery pkg/util/validation/validation.go (dns1123LabelFmt, dns1123SubdomainFmt).
const DNS1123_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_SUBDOMAIN = new RegExp(`^${DNS1123_LABEL}(\\.${DNS1123_LABEL})*$`);
// k8s.io/apimachinery pkg/api/validate/content/kube.go (labelKeyFmt, labelValueFmt).
const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

/** IsDNS1123Label (namespace names): a lowercase DNS label of at most 63 characters. */
export function dnsLabelProblem(value: string): string | undefined {
  if (value.length > 63) return `must be at most 63 characters (got ${value.length})`;
  if (!new RegExp(`^${DNS1123_LABEL}$`).test(value))
    return "must be a DNS label: lowercase letters, digits and '-', starting and ending with a letter or digit";
  return undefined;
}

/** IsDNS1123Subdomain: lowercase DNS labels joined by dots, at most 253 characters. */
export function dnsSubdomainProblem(value: string): string | undefined {
  if (value.length > 253) return `must be at most 253 characters (got ${value.length})`;
  if (!DNS1123_SUBDOMAIN.test(value))
    return "must be a DNS subdomain: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit";
  return undefined;
}

/** IsValidLabelValue: empty, or at most 63 of [A-Za-z0-9_.-] starting and ending alphanumeric. */
export function labelValueProblem(value: string): string | undefined {
  if (value.length > 63) return `must be at most 63 characters (got ${value.length})`;
  if (value !== "" && !LABEL_NAME.test(value))
    return "must be a label value: letters, digits, '-', '_' and '.', starting and ending with a letter or digit";
  return undefined;
}

/** IsQualifiedName (label and node-selector keys): `[<DNS subdomain prefix>/]<name of at most 63>`. */
export function qualifiedNameProblem(value: string): string | undefined {
  const parts = value.split("/");
  if (parts.length > 2)
    return "must be a qualified name: an optional DNS subdomain prefix and '/', then a name";
  const name = parts[parts.length - 1];
  if (parts.length === 2) {
    if (parts[0] === "") return "has an empty prefix before '/'";
    const prefix = dnsSubdomainProblem(parts[0]);
    if (prefix) return `prefix '${parts[0]}' ${prefix}`;
  }
  if (name === "") return "has an empty name";
  if (name.length > 63) return `name part must be at most 63 characters (got ${name.length})`;
  if (!LABEL_NAME.test(name))
    return "name part must be letters, digits, '-', '_' and '.', starting and ending with a letter or digit";
  return undefined;
}

/**
 * IsExtendedResourceName (kubernetes pkg/apis/core/helper/helpers.go): domain-qualified, not in
 * the kubernetes.io namespace (IsNativeResource), no `requests.` prefix, and
 * `requests.<name>` (its ResourceQuota key) must be a qualified name.
 */
export function extendedResourceNameProblem(value: string): string | undefined {
  if (!value.includes("/"))
    return "must be domain-qualified, e.g. nvidia.com/gpu (unqualified names are Kubernetes' own)";
  if (value.includes("kubernetes.io/"))
    return "is in the kubernetes.io namespace, which is reserved for Kubernetes' own resources";
  if (value.startsWith("requests."))
    return "must not start with 'requests.' (ResourceQuota uses that prefix)";
  const quotaKey = qualifiedNameProblem(`requests.${value}`);
  if (quotaKey) return `gives the ResourceQuota key 'requests.${value}', which ${quotaKey}`;
  return undefined;
}
