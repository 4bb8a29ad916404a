// The registry schema as a Pulumi resource: `pulumi up` migrates the registry database to the
// migrations shipped with this program, and again whenever that set of versions changes.
// Like RegistryEntry, the provider is serialized, so credentials only arrive as inputs.
import * as pulumi from "@pulumi/pulumi";
import { withRegistryClient, MIGRATIONS, migrate } from "@vllm-fleet/registry";

/** The shipped migrations as `version:name`; a change to this list re-runs the migrations. */
export const MIGRATION_SET = MIGRATIONS.map((m) => `${m.version}:${m.name}`);

export interface RegistryMigrationsInputs {
  connectionString: string;
  /** CA certificate (PEM text, not a path: the provider runs serialized elsewhere). */
  caCertificate?: string;
  migrations: string[];
}

export interface RegistryMigrationsOutputs extends RegistryMigrationsInputs {
  /** Schema version after the last run. */
  version: number;
  /** Versions the last run applied (empty when already current). */
  applied: string[];
}

async function apply(inputs: RegistryMigrationsInputs): Promise<RegistryMigrationsOutputs> {
  const result = await withRegistryClient(inputs.connectionString, (db) => migrate(db), {
    ca: inputs.caCertificate,
  });
  return {
    ...inputs,
    version: result.to,
    applied: result.steps.map((s) => `${s.version}:${s.name}`),
  };
}

export const registryMigrationsProvider: pulumi.dynamic.ResourceProvider = {
  async diff(_id: string, olds: RegistryMigrationsOutputs, news: RegistryMigrationsInputs) {
    return { changes: JSON.stringify(olds.migrations) !== JSON.stringify(news.migrations) };
  },
  async create(inputs: RegistryMigrationsInputs) {
    return { id: "model_registry_entries", outs: await apply(inputs) };
  },
  async update(_id: string, _olds: RegistryMigrationsOutputs, news: RegistryMigrationsInputs) {
    return { outs: await apply(news) };
  },
  // delete is deliberately absent: destroying the stack never drops the registry or its rows.
};

export interface RegistryMigrationsArgs {
  /** Connection URL of the schema's owner role (a secret). */
  connectionString: pulumi.Input<string>;
  /** CA certificate (PEM) the registry's TLS is verified against (`registry.sslrootcert`). */
  caCertificate?: pulumi.Input<string>;
}

/** Applies the registry's schema migrations under their advisory lock. */
export class RegistryMigrations extends pulumi.dynamic.Resource {
  declare readonly version: pulumi.Output<number>;
  declare readonly applied: pulumi.Output<string[]>;

  constructor(name: string, args: RegistryMigrationsArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      registryMigrationsProvider,
      name,
      { ...args, migrations: MIGRATION_SET, version: undefined, applied: undefined },
      {
        ...opts,
        additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), "connectionString"],
      },
      "vllm-registry",
      "RegistryMigrations",
    );
  }
}
