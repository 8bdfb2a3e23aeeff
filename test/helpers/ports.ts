/** Free loopback ports for tests (shared with the benches, which cannot import test/). */
export { freeTcpPort, freeUdpPort } from '../../bench/system.js';
