/**
 * A test CA and leaf certificates for 127.0.0.1, made with the openssl CLI in a temp dir
 * (removed in teardown): HTTPS tests trust the CA (curl --cacert, Node's `ca`, an NSS db for
 * Chromium) rather than turning verification off. Each leaf gets the serial number asked for,
 * so a test can tell which certificate a listener presents.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';

export interface TestCa {
  dir: string;
  /** The CA certificate (PEM) to trust. */
  caFile: string;
  /** Issues a leaf for 127.0.0.1 and localhost with this serial (hex, e.g. '1A01'); returns its files. */
  issue(name: string, serialHex: string): Promise<{ certFile: string; keyFile: string; serial: string }>;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 });
}

export async function makeTestCa(t: Test): Promise<TestCa> {
  const dir = await mkdtemp(join(tmpdir(), 'onair-tls-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  openssl(
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=onair test CA',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
    dir,
  );
  const extensions = join(dir, 'leaf.ext');
  await writeFile(
    extensions,
    ['basicConstraints=CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=serverAuth', 'subjectAltName=IP:127.0.0.1,DNS:localhost', ''].join('\n'),
  );
  return {
    dir,
    caFile: join(dir, 'ca.pem'),
    async issue(name, serialHex) {
      openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', '/CN=127.0.0.1'], dir);
      openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', `0x${serialHex}`, '-days', '2', '-extfile', extensions, '-out', `${name}.pem`], dir);
      return { certFile: join(dir, `${name}.pem`), keyFile: join(dir, `${name}.key`), serial: serialHex.toUpperCase() };
    },
  };
}

/** The serial number (hex) of the certificate a new TLS connection to 127.0.0.1:`port` is shown, verified against the CA. */
export function presentedSerial(caFile: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca: readFileSync(caFile), servername: 'localhost' }, () => {
      const serial = socket.getPeerX509Certificate()?.serialNumber.toUpperCase() ?? '';
      socket.destroy();
      resolve(serial);
    });
    socket.setTimeout(10_000, () => socket.destroy(new Error('no TLS handshake within 10 s')));
    socket.once('error', reject);
  });
}
