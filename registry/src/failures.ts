// Which PostgreSQL failures mean "the registry is unavailable". Only those may put the router
// into degraded mode; an error about the query itself (say 22021, a byte sequence the database
// encoding rejects) says nothing about the database being down.
import { DatabaseError } from "pg";

/**
 * SQLSTATE classes of a server that cannot answer now rather than of a wrong query
 * (https://www.postgresql.org/docs/current/errcodes-appendix.html): 08 connection exception,
 * 53 insufficient resources (too many connections, out of memory), 57 operator intervention
 * (57014 query_canceled by statement_timeout, 57P01 admin_shutdown, 57P03 cannot_connect_now),
 * 58 system error (I/O).
 */
const UNAVAILABLE_CLASSES = new Set(["08", "53", "57", "58"]);

/**
 * True for a failure to reach or hear from the server: refused, reset or silent connections,
 * pg's connect and query timeouts, and the SQLSTATE classes above. False for every other error
 * the server sent back about the query (an ErrorResponse carries a SQLSTATE: pg's DatabaseError).
 */
export function isConnectionFailure(err: unknown): boolean {
  if (err instanceof DatabaseError) return UNAVAILABLE_CLASSES.has(String(err.code).slice(0, 2));
  return true;
}
