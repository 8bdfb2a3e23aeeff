/**
 * Redaction (src/logging/redact.ts): credentials in URLs and free text, and secret-named keys
 * in a config, become `***`; everything else is left as it was.
 */
import t from 'tap';
import { isSecretName, redactSecrets, redactText, redactUrl } from '../../src/logging/redact.js';

t.test('secret query parameters of a URL are redacted, the others kept', async (t) => {
  t.equal(redactUrl('/fip/fip_hifi.m3u8?token=1735689600.abcdef&_HLS_msn=12'), '/fip/fip_hifi.m3u8?token=***&_HLS_msn=12');
  t.equal(
    redactUrl('srt://0.0.0.0:9000?mode=listener&latency=120000&passphrase=correct-horse-battery&streamid=fip'),
    'srt://0.0.0.0:9000?mode=listener&latency=120000&passphrase=***&streamid=fip',
  );
  t.equal(redactUrl('https://cms.example/hook?api_key=k1&secret=s2&access_token=t3&page=2'), 'https://cms.example/hook?api_key=***&secret=***&access_token=***&page=2');
  t.equal(redactUrl('/fip/fip.m3u8'), '/fip/fip.m3u8', 'a URL without credentials is unchanged');
  t.equal(redactUrl('/x?token='), '/x?token=', 'an empty value stays empty');
});

t.test('userinfo in URLs is redacted', async (t) => {
  t.equal(redactUrl('redis://default:hunter2@redis.example:6379/0'), 'redis://***@redis.example:6379/0');
  t.equal(redactUrl('http://source:icecast-pw@icecast.example/fip.aac'), 'http://***@icecast.example/fip.aac');
  t.equal(redactUrl('redis://redis.example:6379/0'), 'redis://redis.example:6379/0');
});

t.test('URLs inside free text (FFmpeg messages, error stacks) are redacted in place', async (t) => {
  // A value runs to the next space, quote, & ; or #: a passphrase may hold ":" or ",", so the
  // punctuation FFmpeg puts after a URL goes with it rather than risk showing part of a secret.
  const line = 'srt://127.0.0.1:9000?mode=listener&passphrase=correct-horse-battery: Input/output error';
  t.equal(redactText(line), 'srt://127.0.0.1:9000?mode=listener&passphrase=*** Input/output error');
  const two = "Error opening input 'http://u:p@a.example/x?token=abc' then rtmp://b.example/live?key=xyz and more";
  t.equal(redactText(two), "Error opening input 'http://***@a.example/x?token=***' then rtmp://b.example/live?key=*** and more");
});

t.test('secret names: passphrases, keys, secrets, tokens, passwords, in any common spelling', async (t) => {
  for (const name of ['passphrase', 'key', 'secret', 'token', 'tokens', 'password', 'ingestTokens', 'signingKey', 'api_key', 'x-api-key', 'access_token', 'apikey']) {
    t.ok(isSecretName(name), name);
  }
  for (const name of ['url', 'monkey', 'mode', 'latency', 'streamid', 'id', '_HLS_msn', 'keyframes', 'tokenizer']) t.notOk(isSecretName(name), name);
});

t.test('a config dump hides every secret and keeps the rest', async (t) => {
  const config = {
    store: 'redis://default:hunter2@redis.example:6379/0',
    signing: { key: 'a-signing-key-of-at-least-32-characters' },
    api: { tokens: ['api-token-0123456789', 'api-token-abcdefghij'], host: '127.0.0.1' },
    listeners: { ingestTokens: ['ingest-token-0123456789'] },
    recordings: { webhook: { url: 'https://cms.example/hook?token=t0k3n', secret: 'webhook-secret-123' } },
    channels: [{ id: 'fip', inputs: [{ id: 'main', url: 'srt://0.0.0.0:9000?mode=listener', srt: { latency: 120, passphrase: 'correct-horse-battery' } }] }],
  };
  const shown = redactSecrets(config);
  const text = JSON.stringify(shown);
  for (const secret of ['hunter2', 'a-signing-key', 'api-token', 'ingest-token', 't0k3n', 'webhook-secret', 'correct-horse']) t.notOk(text.includes(secret), `${secret} is not shown`);
  t.same(shown, {
    store: 'redis://***@redis.example:6379/0',
    signing: { key: '***' },
    api: { tokens: ['***', '***'], host: '127.0.0.1' },
    listeners: { ingestTokens: ['***'] },
    recordings: { webhook: { url: 'https://cms.example/hook?token=***', secret: '***' } },
    channels: [{ id: 'fip', inputs: [{ id: 'main', url: 'srt://0.0.0.0:9000?mode=listener', srt: { latency: 120, passphrase: '***' } }] }],
  });
  t.equal(config.signing.key, 'a-signing-key-of-at-least-32-characters', 'the config itself is not changed');
});
