import { describe, expect, it } from 'vitest';
import { parseIpv4Routes } from '../../../src/plumbing/ipjson.js';
import { planRouteSync } from '../../../src/plumbing/route.js';
import { ROUTES_JSON } from './samples.js';

// wtun0 carries 10.32.0.0/12 (src 10.32.1.1) and the host route 10.40.0.5.
const existing = parseIpv4Routes(ROUTES_JSON);

describe('planRouteSync', () => {
  it('does nothing when the device already carries exactly the wanted routes', () => {
    const wanted = [
      { cidr: '10.32.0.0/12', dev: 'wtun0', src: '10.32.1.1' },
      { cidr: '10.40.0.5/32', dev: 'wtun0' },
    ];
    expect(planRouteSync(existing, 'wtun0', wanted)).toEqual({ replace: [], remove: [] });
  });

  it('adds missing routes and removes stale ones, comparing canonical CIDRs', () => {
    const wanted = [
      { cidr: '10.47.1.1/12', dev: 'wtun0', src: '10.32.1.1' },
      { cidr: '10.60.0.0/16', dev: 'wtun0' },
    ];
    expect(planRouteSync(existing, 'wtun0', wanted)).toEqual({
      replace: [{ cidr: '10.60.0.0/16', dev: 'wtun0' }],
      remove: ['10.40.0.5/32'],
    });
  });

  it('replaces a route whose source address changed instead of removing it', () => {
    const wanted = [{ cidr: '10.32.0.0/12', dev: 'wtun0', src: '10.32.4.1' }];
    expect(planRouteSync(existing, 'wtun0', wanted)).toEqual({ replace: wanted, remove: ['10.40.0.5/32'] });
  });

  it('takes over a destination routed through another device', () => {
    const wanted = [{ cidr: '10.32.2.0/24', dev: 'wtun0' }];
    expect(planRouteSync(existing, 'wtun0', wanted).replace).toEqual(wanted);
  });

  it('leaves routes of other owners (another protocol) alone', () => {
    const podRoute = parseIpv4Routes(
      '[{"dst":"10.32.1.7","dev":"weave","protocol":"static","scope":"link","flags":[]}]',
    );
    expect(planRouteSync([...existing, ...podRoute], 'weave', []).remove).toEqual([]);
  });

  it('never removes the kernel routes of the device addresses', () => {
    expect(planRouteSync(existing, 'weave', []).remove).toEqual([]);
    expect(planRouteSync(existing, 'ul0', []).remove).toEqual(['default']);
  });
});
