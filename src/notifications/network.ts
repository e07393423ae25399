// Who is posting: the client's address, and whether it is on a list of networks (the Market's,
// or trusted proxies). Addresses are numbers (IPv4 32 bits, IPv6 128), so a CIDR test is a shift
// and a compare; an IPv4-mapped IPv6 address (::ffff:5.45.207.1, what a dual-stack socket
// reports for an IPv4 peer) is the IPv4 address it maps.
//
// X-Forwarded-For is anyone's to write: it is read only when the socket's peer is a trusted proxy,
// and then from the right (the entries the proxies appended) to the first one that is not itself
// a trusted proxy. Whatever a client put further left is never believed.

import { isIP } from 'node:net';
import { NotificationNetworkError } from './errors.js';

/** The networks the Market sends notifications from (its 2025 documentation; market-api/NOTES.md §g). */
export const MARKET_NOTIFICATION_NETWORKS = ['5.45.207.0/25', '141.8.142.0/25', '5.255.253.0/25'] as const;

export interface IpAddress {
  readonly family: 4 | 6;
  readonly value: bigint;
  /** As people read it: dotted IPv4 (also for a mapped IPv6 address), IPv6 lower-case without a zone. */
  readonly text: string;
}

const BITS = { 4: 32, 6: 128 } as const;

function ipv4Value(text: string): bigint {
  return text.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
}

function ipv4Text(value: bigint): string {
  return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 0xffn)).join('.');
}

/** The 128-bit value of an address isIP() called IPv6 (`::` expanded, a dotted IPv4 tail read). */
function ipv6Value(text: string): bigint {
  let head = text;
  const tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.slice(lastColon + 1).includes('.')) {
    const v4 = Number(ipv4Value(text.slice(lastColon + 1)));
    tail.push(v4 >>> 16, v4 & 0xffff);
    head = text.slice(0, text.endsWith('::', lastColon + 1) ? lastColon + 1 : lastColon);
  }
  const [left = '', right] = head.split('::');
  const groups = (part: string): number[] => (part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)));
  const before = groups(left);
  const after = right === undefined ? [] : groups(right);
  const zeros = right === undefined ? [] : new Array<number>(8 - tail.length - before.length - after.length).fill(0);
  return [...before, ...zeros, ...after, ...tail].reduce((acc, g) => (acc << 16n) | BigInt(g), 0n);
}

/** An IPv4 or IPv6 address (a zone such as %eth0 is dropped), or undefined for anything else. */
export function parseIpAddress(text: string): IpAddress | undefined {
  const bare = text.trim().replace(/%.*$/, '').toLowerCase();
  const family = isIP(bare);
  if (family === 4) return { family, value: ipv4Value(bare), text: bare };
  if (family !== 6) return undefined;
  const value = ipv6Value(bare);
  if (value >> 32n === 0xffffn) return { family: 4, value: value & 0xffffffffn, text: ipv4Text(value & 0xffffffffn) };
  return { family, value, text: bare };
}

export interface Network {
  readonly family: 4 | 6;
  readonly prefix: number;
  /** The address with its host bits cleared. */
  readonly base: bigint;
  /** As given, for messages. */
  readonly text: string;
}

/** `address/prefix` or one address (a /32 or /128); throws NOTIFY_BAD_NETWORK. An IPv4-mapped network (::ffff:a.b.c.d/96+) is the IPv4 one. */
export function parseNetwork(text: string): Network {
  if (typeof text !== 'string') throw new NotificationNetworkError(String(text), 'not a string');
  const slash = text.indexOf('/');
  const addressText = slash === -1 ? text : text.slice(0, slash);
  const address = parseIpAddress(addressText);
  if (address === undefined || addressText.includes('%')) throw new NotificationNetworkError(text, `${JSON.stringify(addressText.slice(0, 60))} is no IPv4 or IPv6 address`);
  const written = isIP(addressText.trim()) === 6 ? 6 : 4;
  const prefixText = slash === -1 ? String(BITS[written]) : text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > BITS[written]) {
    throw new NotificationNetworkError(text, `the prefix length must be a whole number from 0 to ${BITS[written]}`);
  }
  let prefix = Number(prefixText);
  if (written === 6 && address.family === 4) {
    // A mapped network shorter than /96 would also cover addresses that map no IPv4 address.
    if (prefix < 96) throw new NotificationNetworkError(text, 'an IPv4-mapped network needs a prefix of at least 96 (or write it as IPv4)');
    prefix -= 96;
  }
  const host = BigInt(BITS[address.family] - prefix);
  return { family: address.family, prefix, base: (address.value >> host) << host, text };
}

/** A list of networks; `contains` is false for an address it cannot read. */
export class NetworkList {
  readonly networks: readonly Network[];

  private constructor(networks: readonly Network[]) {
    this.networks = networks;
  }

  /** Parses every entry; throws NOTIFY_BAD_NETWORK naming the first that is not a network. */
  static parse(networks: readonly string[]): NetworkList {
    if (!Array.isArray(networks)) throw new NotificationNetworkError(String(networks), 'expected a list of networks');
    return new NetworkList(networks.map(parseNetwork));
  }

  contains(address: IpAddress | string | undefined): boolean {
    const ip = typeof address === 'string' ? parseIpAddress(address) : address;
    if (ip === undefined) return false;
    return this.networks.some((n) => {
      if (n.family !== ip.family) return false;
      const host = BigInt(BITS[n.family] - n.prefix);
      return (ip.value >> host) << host === n.base;
    });
  }
}

/** One X-Forwarded-For entry: an address, with or without a port (`1.2.3.4:80`, `[2001:db8::1]:443`). */
function parseForwardedHop(entry: string): IpAddress | undefined {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(entry);
  if (bracketed) return parseIpAddress(bracketed[1]!);
  const v4WithPort = /^([\d.]+):\d+$/.exec(entry);
  return parseIpAddress(v4WithPort ? v4WithPort[1]! : entry);
}

/**
 * The client's address: the socket's peer, unless the peer is a trusted proxy; then the
 * right-most X-Forwarded-For entry that is not itself a trusted proxy (the left-most entry when
 * all are). Undefined when the peer is unknown (a closed socket) or the entry that names the
 * client is no address.
 */
export function resolveClientAddress(
  remoteAddress: string | undefined,
  forwardedFor: string | readonly string[] | undefined,
  trustedProxies: NetworkList,
): IpAddress | undefined {
  const peer = remoteAddress === undefined ? undefined : parseIpAddress(remoteAddress);
  if (peer === undefined || !trustedProxies.contains(peer)) return peer;
  const header = typeof forwardedFor === 'string' ? forwardedFor : (forwardedFor ?? []).join(',');
  const hops = header.split(',').map((hop) => hop.trim()).filter((hop) => hop !== '');
  let client: IpAddress = peer;
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = parseForwardedHop(hops[i]!);
    if (hop === undefined) return undefined;
    client = hop;
    if (!trustedProxies.contains(hop)) break;
  }
  return client;
}
