import tseslint from "typescript-eslint";

// Import boundaries (tests/structure.test.ts and tests/layers.test.ts check they fire).
//
// Workspace packages are used through their public entries: the registry through
// @vllm-fleet/registry everywhere; the router through its contract, @vllm-fleet/router/contract
// (env var names, ports, Secret key, metric names, routing modes), and @vllm-fleet/router/routing
// (the headless Service's name); the router's and the policy pack's other modules only by their
// own tests.
const REGISTRY_INTERNALS = {
  regex: "^(\\.\\.?/)+(.*/)?registry/src(/|$)|^@vllm-fleet/registry/",
  message: "Import the registry through its public entry, @vllm-fleet/registry.",
};
const PACKAGE_INTERNALS = {
  regex:
    "^(\\.\\./)+(router|policies)(/|$)|^\\./(router|policies)/|^@vllm-fleet/router/(?!(contract|routing)$)",
  message:
    "The router and the policy pack are workspace packages: import their public entries (@vllm-fleet/router/contract, @vllm-fleet/router/routing).",
};
// components/ is layered: spec (config, naming) <- manifests (pure builders) <- resources
// (Pulumi). Spec and manifests are loaded offline (render, scripts, policy tests), so they import
// no Pulumi SDK; each layer imports a lower one through its index.ts only, and nothing imports a
// higher one.
const PULUMI = {
  regex: "^@pulumi/",
  message:
    "components/spec and components/manifests are pure (loaded offline by render, scripts and tests): no Pulumi SDK. Pass deploy-time values (image digests, Secret names, Pulumi secrets) as builder parameters and apply them in components/resources/.",
};
const viaIndex = (layers) => ({
  regex: `^\\.\\./(${layers})/`,
  message: "Import another components layer through its index.ts (`../spec`, `../manifests`).",
});
const above = (layers) => ({
  regex: `^\\.\\./(${layers})(/|$)`,
  message: "components/ layers import only lower ones: spec <- manifests <- resources.",
});
const LAYER_INDEX = {
  regex: "(^|/)components/(spec|manifests|resources)/",
  message:
    "Import a components layer through its index.ts (`components/spec`, `components/manifests`, `components/resources`).",
};

/** One config object per file group: ESLint applies the last matching object's options whole. */
const restrict = (files, patterns, ignores = []) => ({
  files,
  ignores,
  rules: { "no-restricted-imports": ["error", { patterns }] },
});

export default tseslint.config(
  { ignores: ["**/node_modules/**", "**/dist/**", "bin/**", "rendered/**", "**/*.js", "**/*.mjs"] },
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
      "@typescript-eslint/no-explicit-any": "error",
    },
  },
  restrict(
    ["tests/**/*.ts", "router/**/*.ts", "policies/**/*.ts"],
    [REGISTRY_INTERNALS, LAYER_INDEX],
  ),
  restrict(
    ["*.ts", "components/*.ts", "registry-stack/**/*.ts", "scripts/**/*.ts", "bench/**/*.ts"],
    [REGISTRY_INTERNALS, PACKAGE_INTERNALS, LAYER_INDEX],
  ),
  restrict(
    ["components/spec/**"],
    [PULUMI, above("manifests|resources"), REGISTRY_INTERNALS, PACKAGE_INTERNALS],
  ),
  restrict(
    ["components/manifests/**"],
    [PULUMI, above("resources"), viaIndex("spec"), REGISTRY_INTERNALS, PACKAGE_INTERNALS],
  ),
  restrict(
    ["components/resources/**"],
    [viaIndex("spec|manifests"), REGISTRY_INTERNALS, PACKAGE_INTERNALS],
  ),
);
