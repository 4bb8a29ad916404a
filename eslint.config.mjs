import tseslint from "typescript-eslint";

/** Deep imports into a workspace package: each package is used through its public entry. */
const workspaceInternals = [
  {
    regex: "^(\\.\\.?/)+(.*/)?registry/src(/|$)|^@vllm-fleet/registry/",
    message: "Import the registry through its public entry, @vllm-fleet/registry.",
  },
];

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
    files: ["**/*.ts"],
    ignores: ["registry/**"],
    rules: { "no-restricted-imports": ["error", { patterns: workspaceInternals }] },
  },
  {
    // The program, components, scripts and bench use the router and the policy pack as
    // packages; only their own tests (tests/) reach into their modules.
    files: [
      "index.ts",
      "registry-stack/**/*.ts",
      "components/**/*.ts",
      "scripts/**/*.ts",
      "bench/**/*.ts",
    ],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            ...workspaceInternals,
            {
              regex: "^(\\.\\.?/)+(router|policies)(/|$)|^@vllm-fleet/router/",
              message:
                "The router and the policy pack are workspace packages: import their public entry.",
            },
          ],
        },
      ],
    },
  },
);
