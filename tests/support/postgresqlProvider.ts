// The SQL the postgresql provider (cyrilgdn/terraform-provider-postgresql, which @pulumi/postgresql
// wraps) runs for a Role, Database and Grant, replayed against a real PostgreSQL as the user the
// provider is configured with, so that what a program declares meets PostgreSQL's own privilege
// checks. Followed file by file (all under postgresql/):
//   resource_postgresql_role.go      resourcePostgreSQLRoleCreate (CREATE ROLE ... WITH, grantRoles),
//                                    resourcePostgreSQLRoleDelete (REASSIGN OWNED, DROP OWNED, DROP ROLE)
//   resource_postgresql_database.go  createDatabase (grantRoleMembership of the owner, CREATE DATABASE)
//   resource_postgresql_grant.go     resourcePostgreSQLGrantCreateOrUpdate (getRolesToGrant,
//                                    createRevokeQuery then createGrantQuery), readRolePrivileges
//   helpers.go                       withRolesGranted, grantRoleMembership, revokeRoleMembership,
//                                    isMemberOfRole, getTablesOwner, getSchemaOwner, resolveOwners
// The advisory locks (pgLockRole, pgLockDatabase) only serialize concurrent runs and are left out.
import * as pulumi from "@pulumi/pulumi";
import { Client, ClientBase } from "pg";
import type { MockedResource } from "./program";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Inputs = Record<string, any>;

/** pq.QuoteIdentifier */
export const q = (ident: string) => `"${ident.replace(/"/g, '""')}"`;
/** pqQuoteLiteral */
const lit = (s: string) => `'${s.replace(/'/g, "''")}'`;

/** A mocked input as the program gave it, secret or not. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function plain(v: any): any {
  return v && v[pulumi.runtime.specialSigKey] === pulumi.runtime.specialSecretSig ? v.value : v;
}

/** One configured provider: its user, password and default database (`postgres`). */
export class ProviderSession {
  readonly user: string;
  /** Warnings and notices PostgreSQL sent (e.g. "no privileges were granted"). */
  readonly notices: string[] = [];
  private readonly clients = new Map<string, Client>();

  constructor(
    private readonly server: URL,
    provider: Inputs,
  ) {
    this.user = provider.username;
    this.password = plain(provider.password);
    this.database = provider.database ?? "postgres";
  }
  private readonly password: string;
  private readonly database: string;

  /** startTransaction(client, database): a connection to `database` ("" = the provider's). */
  async client(database = ""): Promise<Client> {
    const name = database || this.database;
    let c = this.clients.get(name);
    if (!c) {
      const u = new URL(this.server.toString());
      u.username = this.user;
      u.password = this.password;
      u.pathname = `/${name}`;
      c = new Client({ connectionString: u.toString() });
      c.on("notice", (n) => this.notices.push(`${n.severity}: ${n.message}`));
      await c.connect();
      this.clients.set(name, c);
    }
    return c;
  }

  async end(): Promise<void> {
    for (const c of this.clients.values()) await c.end().catch(() => undefined);
    this.clients.clear();
  }

  /** Runs `fn` in one transaction on `database`, as the provider does. */
  async transaction<T>(database: string, fn: (c: Client) => Promise<T>): Promise<T> {
    const c = await this.client(database);
    await c.query("BEGIN");
    try {
      const result = await fn(c);
      await c.query("COMMIT");
      return result;
    } catch (e) {
      await c.query("ROLLBACK");
      throw e;
    }
  }

  /** resourcePostgreSQLRoleCreate: CREATE ROLE with every option, then its `roles`. */
  createRole(i: Inputs): Promise<void> {
    return this.transaction("", async (c) => {
      const opts = [
        ...(i.password ? [`ENCRYPTED PASSWORD ${lit(plain(i.password))}`] : []),
        `VALID UNTIL 'infinity'`,
        `CONNECTION LIMIT ${i.connectionLimit ?? -1}`,
        i.superuser ? "SUPERUSER" : "NOSUPERUSER",
        i.createDatabase ? "CREATEDB" : "NOCREATEDB",
        i.createRole ? "CREATEROLE" : "NOCREATEROLE",
        i.inherit === false ? "NOINHERIT" : "INHERIT",
        i.login ? "LOGIN" : "NOLOGIN",
        i.bypassRowLevelSecurity ? "BYPASSRLS" : "NOBYPASSRLS",
        i.replication ? "REPLICATION" : "NOREPLICATION",
      ];
      await c.query(`CREATE ROLE ${q(i.name)} WITH ${opts.join(" ")}`);
      for (const g of i.roles ?? []) await c.query(`GRANT ${q(g)} TO ${q(i.name)}`);
    });
  }

  /** resourcePostgreSQLRoleDelete (skip_reassign_owned and skip_drop_role unset). */
  deleteRole(i: Inputs): Promise<void> {
    return this.transaction("", async (c) => {
      await withRolesGranted(c, [i.name], async () => {
        await c.query(`REASSIGN OWNED BY ${q(i.name)} TO ${q(this.user)}`);
        await c.query(`DROP OWNED BY ${q(i.name)}`);
      });
      await c.query(`DROP ROLE ${q(i.name)}`);
    });
  }

  /** createDatabase: the owner is granted to the provider's user for CREATE DATABASE ... OWNER. */
  async createDatabase(i: Inputs): Promise<void> {
    const c = await this.client();
    const granted = await grantRoleMembership(c, i.owner, this.user);
    try {
      await c.query(
        `CREATE DATABASE ${q(i.name)} OWNER ${q(i.owner)} TEMPLATE template0 ENCODING 'UTF8' ALLOW_CONNECTIONS true CONNECTION LIMIT -1 IS_TEMPLATE false`,
      );
    } finally {
      if (granted) await revokeRoleMembership(c, i.owner, this.user);
    }
  }

  /**
   * resourcePostgreSQLGrantCreateOrUpdate: revoke, then grant, with the owners getRolesToGrant
   * finds granted to the provider's user meanwhile; then the read that becomes the state.
   */
  async grant(i: Inputs): Promise<string[]> {
    await this.transaction(i.database, async (c) => {
      const owners = await getRolesToGrant(c, i);
      await withRolesGranted(c, owners, async () => {
        await c.query(grantQuery("REVOKE", i));
        if (i.privileges.length) await c.query(grantQuery("GRANT", i));
      });
    });
    return this.readPrivileges(i);
  }

  /**
   * readRolePrivileges: what `pulumi refresh` and every preview's read put into the state as
   * `privileges` (sorted here); anything but the declared list is a diff.
   */
  async readPrivileges(i: Inputs): Promise<string[]> {
    const c = await this.client(i.database);
    const oid = (await c.query(`SELECT oid FROM pg_roles WHERE rolname = $1`, [i.role])).rows[0]
      .oid;
    if (i.objectType === "database") {
      const { rows } = await c.query(
        `SELECT array_agg(privilege_type) AS p FROM (SELECT (aclexplode(datacl)).* FROM pg_database WHERE datname=$1) AS privileges WHERE grantee = $2`,
        [i.database, oid],
      );
      return [...(rows[0].p ?? [])].sort();
    }
    const { rows } = await c.query(
      `SELECT pg_class.relname, array_remove(array_agg(privilege_type), NULL) AS p
       FROM pg_class JOIN pg_namespace ON pg_namespace.oid = pg_class.relnamespace
       LEFT JOIN (SELECT acls.* FROM (SELECT relname, relnamespace, relkind, (aclexplode(relacl)).* FROM pg_class c) AS acls WHERE grantee = $1) privs
       USING (relname, relnamespace, relkind)
       WHERE nspname = $2 AND relkind = $3 GROUP BY pg_class.relname`,
      [oid, i.schema, { table: "r", sequence: "S" }[i.objectType as string]],
    );
    const read = rows.filter((r) => i.objects.includes(r.relname));
    // The first object whose privileges differ is what the provider reports.
    const differs = read.find((r) => [...r.p].sort().join() !== [...i.privileges].sort().join());
    return [...(differs ?? read[0] ?? { p: [] }).p].sort();
  }
}

/** createGrantQuery / createRevokeQuery (ALL PRIVILEGES for database and schema). */
function grantQuery(verb: "GRANT" | "REVOKE", i: Inputs): string {
  const to = verb === "GRANT" ? "TO" : "FROM";
  const what =
    verb === "REVOKE" && ["database", "schema"].includes(i.objectType)
      ? "ALL PRIVILEGES"
      : i.privileges.join(",");
  switch (i.objectType) {
    case "database":
      return `${verb} ${what} ON DATABASE ${q(i.database)} ${to} ${q(i.role)}`;
    case "schema":
      return `${verb} ${what} ON SCHEMA ${q(i.schema)} ${to} ${q(i.role)}`;
    default:
      return `${verb} ${what} ON ${i.objectType.toUpperCase()} ${i.objects
        .map((o: string) => `${q(i.schema)}.${q(o)}`)
        .join(",")} ${to} ${q(i.role)}`;
  }
}

/** getRolesToGrant: none for a database; the tables' owners and the schema's owner otherwise. */
async function getRolesToGrant(c: ClientBase, i: Inputs): Promise<string[]> {
  if (i.objectType === "database") return [];
  const owners: string[] =
    i.objectType === "schema"
      ? []
      : (
          await c.query(`SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = $1`, [
            i.schema,
          ])
        ).rows.map((r) => r.tableowner);
  const schemaOwner = (
    await c.query(
      `SELECT rolname FROM pg_namespace JOIN pg_roles ON nspowner = pg_roles.oid WHERE nspname = $1`,
      [i.schema],
    )
  ).rows[0].rolname;
  if (!owners.includes(schemaOwner)) owners.push(schemaOwner);
  // resolveOwners: pg_database_owner (PostgreSQL 15+'s owner of `public`) is the database's owner.
  const dbOwner = (
    await c.query(
      `SELECT rolname FROM pg_database JOIN pg_roles ON datdba = pg_roles.oid WHERE datname = current_database()`,
    )
  ).rows[0].rolname;
  return owners.map((o) => (o === "pg_database_owner" ? dbOwner : o));
}

const isSuperuser = async (c: ClientBase, role: string) =>
  (await c.query(`SELECT rolsuper FROM pg_roles WHERE rolname = $1`, [role])).rows[0].rolsuper;

async function isMemberOfRole(c: ClientBase, role: string, member: string): Promise<boolean> {
  const setOption = (
    await c.query(
      `SELECT 1 FROM information_schema.columns WHERE table_name='pg_auth_members' AND column_name = 'set_option'`,
    )
  ).rowCount;
  const { rowCount } = await c.query(
    `SELECT 1 FROM pg_auth_members WHERE pg_get_userbyid(roleid) = $1 AND pg_get_userbyid(member) = $2${setOption ? " AND set_option" : ""}`,
    [role, member],
  );
  return !!rowCount;
}

async function grantRoleMembership(c: ClientBase, role: string, member: string) {
  if (role === member || (await isMemberOfRole(c, role, member))) return false;
  await c.query(`GRANT ${q(role)} TO ${q(member)}`);
  return true;
}

async function revokeRoleMembership(c: ClientBase, role: string, member: string) {
  if (role === member || !(await isMemberOfRole(c, role, member))) return false;
  await c.query(`REVOKE ${q(role)} FROM ${q(member)}`);
  return true;
}

/** withRolesGranted: a user that is not superuser borrows each owner's membership for `fn`. */
async function withRolesGranted(c: ClientBase, roles: string[], fn: () => Promise<void>) {
  if (!roles.length) return fn();
  const currentUser = (await c.query(`SELECT CURRENT_USER AS u`)).rows[0].u;
  if (await isSuperuser(c, currentUser)) return fn();
  const granted: string[] = [];
  const revoked: string[] = [];
  for (const role of roles) {
    if (await isSuperuser(c, role)) continue;
    if (await revokeRoleMembership(c, currentUser, role)) revoked.push(role);
    if (await grantRoleMembership(c, role, currentUser)) granted.push(role);
  }
  await fn();
  for (const role of granted) await revokeRoleMembership(c, role, currentUser);
  for (const role of revoked)
    if ((await c.query(`SELECT 1 FROM pg_roles WHERE rolname = $1`, [role])).rowCount)
      await grantRoleMembership(c, currentUser, role);
}

/** The provider a resource of `resources` was declared with. */
export function providerOf(resources: MockedResource[], r: MockedResource): MockedResource {
  const p = resources.find(
    (x) =>
      x.type === "pulumi:providers:postgresql" &&
      r.provider?.includes(`pulumi:providers:postgresql::${x.name}::`),
  );
  if (!p) throw new Error(`no postgresql provider for ${r.name} (${r.provider})`);
  return p;
}
