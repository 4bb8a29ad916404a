import tseslint from "typescript-eslint";

// components/ is layered: spec (config, naming) <- manifests (pure builders) <- resources
// (Pulumi). Spec and manifests are loaded offline (render, scripts, policy tests), so they import
// no Pulumi SDK; each layer imports a lower one through its index.ts only, and nothing imports a
// higher one. tests/layers.test.ts checks that these rules are here and fire.
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

export default tseslint.config(
  { ignores: ["**/node_modules/**", "**/dist/**", "bin/**", "rendered/**", "**/*.js", "**/*.mjs"] },
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
      "@typescript-eslint/no-explicit-any": "error",
    },
  },
  {
    files: ["components/spec/**"],
    rules: {
      "no-restricted-imports": ["error", { patterns: [PULUMI, above("manifests|resources")] }],
    },
  },
  {
    files: ["components/manifests/**"],
    rules: {
      "no-restricted-imports": [
        "error",
        { patterns: [PULUMI, above("resources"), viaIndex("spec")] },
      ],
    },
  },
  {
    files: ["components/resources/**"],
    rules: { "no-restricted-imports": ["error", { patterns: [viaIndex("spec|manifests")] }] },
  },
  {
    files: ["**/*.ts"],
    ignores: ["components/**"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              regex: "(^|/)components/(spec|manifests|resources)/",
              message:
                "Import a components layer through its index.ts (`components/spec`, `components/manifests`, `components/resources`).",
            },
          ],
        },
      ],
    },
  },
);
