// @vllm-fleet/registry: the model registry every part of the platform shares (the Pulumi
// provider, the registry stack, the operator scripts, the local platform and the router).
// Its public surface is this file; nothing outside registry/ imports a module below directly.
// No Pulumi import: it ships inside the router image. docs/architecture.md has the map.
export * from "./environments";
export * from "./types";
export * from "./text";
export * from "./tls";
export * from "./connect";
export * from "./failures";
export * from "./migrations";
export * from "./queries";
export * from "./cache";
export * from "./registration";
