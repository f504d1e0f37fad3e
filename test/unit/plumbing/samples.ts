/**
 * `ip -json` output captured from iproute2 6.1.0 on kernel 6.18, in a namespace holding the weave
 * bridge with a pod veth, a kernel VXLAN-GPE device with an encap route, a veth underlay, and a
 * TUN with the cluster route. The link sample comes from `ip -details -json link show` with
 * `info_data` left out for brevity.
 */
export const LINKS_DETAILS_JSON = JSON.stringify([
  {
    ifindex: 1,
    ifname: 'lo',
    flags: ['LOOPBACK'],
    mtu: 65536,
    qdisc: 'noop',
    operstate: 'DOWN',
    linkmode: 'DEFAULT',
    group: 'default',
    txqlen: 1000,
    link_type: 'loopback',
    address: '00:00:00:00:00:00',
    broadcast: '00:00:00:00:00:00',
    promiscuity: 0,
    allmulti: 0,
    min_mtu: 0,
    max_mtu: 0,
    inet6_addr_gen_mode: 'eui64',
    num_tx_queues: 1,
    num_rx_queues: 1,
    gso_max_size: 65536,
    gso_max_segs: 65535,
    tso_max_size: 524280,
    tso_max_segs: 65535,
    gro_max_size: 65536,
  },
  {
    ifindex: 2,
    ifname: 'weave',
    flags: ['BROADCAST', 'MULTICAST', 'UP'],
    mtu: 1464,
    qdisc: 'noqueue',
    operstate: 'UNKNOWN',
    linkmode: 'DEFAULT',
    group: 'default',
    txqlen: 1000,
    link_type: 'ether',
    address: '4a:11:38:3a:d1:38',
    broadcast: 'ff:ff:ff:ff:ff:ff',
    promiscuity: 0,
    allmulti: 0,
    min_mtu: 68,
    max_mtu: 65535,
    linkinfo: { info_kind: 'bridge' },
    inet6_addr_gen_mode: 'eui64',
    num_tx_queues: 1,
    num_rx_queues: 1,
    gso_max_size: 65536,
    gso_max_segs: 65535,
    tso_max_size: 524280,
    tso_max_segs: 65535,
    gro_max_size: 65536,
  },
  {
    ifindex: 4,
    link: 'eth9',
    ifname: 'vp1',
    flags: ['NO-CARRIER', 'BROADCAST', 'MULTICAST', 'UP', 'M-DOWN'],
    mtu: 1500,
    qdisc: 'noqueue',
    master: 'weave',
    operstate: 'LOWERLAYERDOWN',
    linkmode: 'DEFAULT',
    group: 'default',
    txqlen: 1000,
    link_type: 'ether',
    address: '4a:11:38:3a:d1:38',
    broadcast: 'ff:ff:ff:ff:ff:ff',
    promiscuity: 1,
    allmulti: 1,
    min_mtu: 68,
    max_mtu: 65535,
    linkinfo: { info_kind: 'veth', info_slave_kind: 'bridge' },
    inet6_addr_gen_mode: 'eui64',
    num_tx_queues: 2,
    num_rx_queues: 2,
    gso_max_size: 65536,
    gso_max_segs: 65535,
    tso_max_size: 524280,
    tso_max_segs: 65535,
    gro_max_size: 65536,
  },
  {
    ifindex: 5,
    ifname: 'vg0',
    flags: ['POINTOPOINT', 'MULTICAST', 'NOARP', 'UP', 'LOWER_UP'],
    mtu: 1464,
    qdisc: 'noqueue',
    operstate: 'UNKNOWN',
    linkmode: 'DEFAULT',
    group: 'default',
    txqlen: 1000,
    link_type: 'none',
    promiscuity: 0,
    allmulti: 0,
    min_mtu: 68,
    max_mtu: 65535,
    linkinfo: { info_kind: 'vxlan' },
    inet6_addr_gen_mode: 'random',
    num_tx_queues: 1,
    num_rx_queues: 1,
    gso_max_size: 65536,
    gso_max_segs: 65535,
    tso_max_size: 65536,
    tso_max_segs: 65535,
    gro_max_size: 65536,
  },
  {
    ifindex: 8,
    ifname: 'wtun0',
    flags: ['NO-CARRIER', 'POINTOPOINT', 'MULTICAST', 'NOARP', 'UP'],
    mtu: 1500,
    qdisc: 'pfifo_fast',
    operstate: 'DOWN',
    linkmode: 'DEFAULT',
    group: 'default',
    txqlen: 10000,
    link_type: 'none',
    promiscuity: 0,
    allmulti: 0,
    min_mtu: 68,
    max_mtu: 65535,
    linkinfo: { info_kind: 'tun' },
    inet6_addr_gen_mode: 'eui64',
    num_tx_queues: 1,
    num_rx_queues: 1,
    gso_max_size: 65536,
    gso_max_segs: 65535,
    tso_max_size: 65536,
    tso_max_segs: 65535,
    gro_max_size: 65536,
  },
]);

/** Verbatim `ip -json addr show` (compact, as ip prints it). */
export const ADDR_JSON =
  '[{"ifindex":1,"ifname":"lo","flags":["LOOPBACK"],"mtu":65536,"qdisc":"noop","operstate":"DOWN","group":"default","txqlen":1000,"link_type":"loopback","address":"00:00:00:00:00:00","broadcast":"00:00:00:00:00:00","addr_info":[]},' +
  '{"ifindex":2,"ifname":"weave","flags":["BROADCAST","MULTICAST","UP"],"mtu":1464,"qdisc":"noqueue","operstate":"UNKNOWN","group":"default","txqlen":1000,"link_type":"ether","address":"4a:11:38:3a:d1:38","broadcast":"ff:ff:ff:ff:ff:ff","addr_info":[{"family":"inet","local":"10.32.1.1","prefixlen":24,"scope":"global","label":"weave","valid_life_time":4294967295,"preferred_life_time":4294967295},{"family":"inet6","local":"fe80::88fd:9bff:fe1d:7909","prefixlen":64,"scope":"link","tentative":true,"valid_life_time":4294967295,"preferred_life_time":4294967295}]},' +
  '{"ifindex":5,"ifname":"vg0","flags":["POINTOPOINT","MULTICAST","NOARP","UP","LOWER_UP"],"mtu":1464,"qdisc":"noqueue","operstate":"UNKNOWN","group":"default","txqlen":1000,"link_type":"none","addr_info":[{"family":"inet6","local":"fe80::207f:b92:5572:59c5","prefixlen":64,"scope":"link","stable-privacy":true,"valid_life_time":4294967295,"preferred_life_time":4294967295}]},' +
  '{"ifindex":7,"link":"ul1","ifname":"ul0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1500,"qdisc":"noqueue","operstate":"UP","group":"default","txqlen":1000,"link_type":"ether","address":"62:70:ae:95:93:20","broadcast":"ff:ff:ff:ff:ff:ff","addr_info":[{"family":"inet","local":"192.168.199.1","prefixlen":24,"scope":"global","label":"ul0","valid_life_time":4294967295,"preferred_life_time":4294967295},{"family":"inet6","local":"fe80::6070:aeff:fe95:9320","prefixlen":64,"scope":"link","tentative":true,"valid_life_time":4294967295,"preferred_life_time":4294967295}]},' +
  '{"ifindex":8,"ifname":"wtun0","flags":["NO-CARRIER","POINTOPOINT","MULTICAST","NOARP","UP"],"mtu":1500,"qdisc":"pfifo_fast","operstate":"DOWN","group":"default","txqlen":10000,"link_type":"none","addr_info":[]}]';

/** Verbatim `ip -4 -json route show table main`; note the duplicate "dst" key of the encap route. */
export const ROUTES_JSON =
  '[{"dst":"default","gateway":"192.168.199.254","dev":"ul0","flags":[]},' +
  '{"dst":"10.32.0.0/12","dev":"wtun0","scope":"link","prefsrc":"10.32.1.1","flags":["linkdown"]},' +
  '{"dst":"10.32.1.0/24","dev":"weave","protocol":"kernel","scope":"link","prefsrc":"10.32.1.1","flags":[]},' +
  '{"dst":"10.32.2.0/24","encap":"ip","id":1,"src":"0.0.0.0","dst":"192.168.199.2","ttl":64,"tos":0,"dev":"vg0","scope":"link","flags":[]},' +
  '{"dst":"10.40.0.5","dev":"wtun0","scope":"link","flags":["linkdown"]},' +
  '{"type":"unreachable","dst":"10.50.0.0/16","flags":[]},' +
  '{"dst":"192.168.199.0/24","dev":"ul0","protocol":"kernel","scope":"link","prefsrc":"192.168.199.1","flags":[]}]';
