// A tiny authoritative DNS server over UDP for tests: answers A questions from a table the test
// changes while it runs (NXDOMAIN for names it does not hold, as Kubernetes answers a headless
// Service without ready pods), in the RFC 1035 wire format (section 4.1).
import * as dgram from "node:dgram";

export interface DnsServer {
  /** `127.0.0.1:<port>`, as ROUTER_DISCOVERY_DNS_SERVERS takes it. */
  address: string;
  /** Sets the A records of `name` (lowercase, no trailing dot); [] or undefined removes it. */
  set(name: string, ips: string[] | undefined): void;
  /** Questions received, by name. */
  questions(name: string): number;
  close(): Promise<void>;
}

/** Reads the question name at `offset`: length-prefixed labels ending in a zero byte. */
function readName(msg: Buffer, offset: number): { name: string; end: number } {
  const labels: string[] = [];
  let i = offset;
  while (msg[i] !== 0) {
    labels.push(msg.toString("latin1", i + 1, i + 1 + msg[i]));
    i += 1 + msg[i];
  }
  return { name: labels.join(".").toLowerCase(), end: i + 1 };
}

export async function startDnsServer(): Promise<DnsServer> {
  const records = new Map<string, string[]>();
  const asked = new Map<string, number>();
  const socket = dgram.createSocket("udp4");
  socket.on("message", (msg, peer) => {
    if (msg.length < 12) return;
    const { name, end } = readName(msg, 12);
    const qtype = msg.readUInt16BE(end);
    asked.set(name, (asked.get(name) ?? 0) + 1);
    const ips = records.get(name);
    const answers = ips && qtype === 1 ? ips : [];
    const header = Buffer.alloc(12);
    header.writeUInt16BE(msg.readUInt16BE(0), 0); // id
    // QR, AA, RD copied, RA; RCODE 3 (NXDOMAIN) for unknown names, 0 otherwise.
    header.writeUInt16BE(0x8400 | (msg.readUInt16BE(2) & 0x0100) | 0x0080 | (ips ? 0 : 3), 2);
    header.writeUInt16BE(1, 4); // QDCOUNT
    header.writeUInt16BE(answers.length, 6); // ANCOUNT
    const question = msg.subarray(12, end + 4);
    const rrs = answers.map((ip) => {
      const rr = Buffer.alloc(16);
      rr.writeUInt16BE(0xc00c, 0); // name: pointer to the question's
      rr.writeUInt16BE(1, 2); // TYPE A
      rr.writeUInt16BE(1, 4); // CLASS IN
      rr.writeUInt32BE(1, 6); // TTL 1 s
      rr.writeUInt16BE(4, 10); // RDLENGTH
      ip.split(".").forEach((octet, k) => rr.writeUInt8(Number(octet), 12 + k));
      return rr;
    });
    socket.send(Buffer.concat([header, question, ...rrs]), peer.port, peer.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  return {
    address: `127.0.0.1:${socket.address().port}`,
    set: (name, ips) => (ips?.length ? records.set(name, ips) : records.delete(name)),
    questions: (name) => asked.get(name) ?? 0,
    close: () => new Promise((resolve) => socket.close(() => resolve())),
  };
}
