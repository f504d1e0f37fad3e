import ipaddr from 'ipaddr.js';
import { ConfigError } from './static-peers.js';

/** Where an HTTP endpoint listens; null means the endpoint is off. */
export interface ListenAddress {
  host: string;
  port: number;
}

/** `HOST:PORT`, `:PORT` (every interface) or `off`, as `--health-listen` and `--metrics-listen` take. */
export function parseListenAddress(flag: string, value: string): ListenAddress | null {
  if (value === 'off') return null;
  const match = /^(.*):(\d{1,5})$/.exec(value);
  const host = match?.[1] === '' ? '0.0.0.0' : match?.[1];
  const port = Number(match?.[2]);
  if (host === undefined || !ipaddr.IPv4.isValidFourPartDecimal(host) || port < 1 || port > 65_535) {
    throw new ConfigError(`${flag} ${value} must be IPV4:PORT (e.g. 127.0.0.1:6784), :PORT or off`);
  }
  return { host, port };
}
