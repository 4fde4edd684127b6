/** Token identities: the tokens file format and its errors, duplicate refusal, the lookup. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TokenTable, identities, parseTokens } from '../../aggregator/auth.ts';

describe('auth', () => {
  it('reads "name token [read|write]" lines, skipping comments and blank lines; write is the default', () => {
    const t = parseTokens('# who  token\n\nalice  3f0c1e8a9b7d4c2e\n  noc 9a8b7c6d5e4f3021   read \r\nbob x-y_z.123456 write\n');
    assert.deepEqual(t, [
      { name: 'alice', token: '3f0c1e8a9b7d4c2e', permission: 'write' },
      { name: 'noc', token: '9a8b7c6d5e4f3021', permission: 'read' },
      { name: 'bob', token: 'x-y_z.123456', permission: 'write' },
    ]);
  });

  it('refuses a bad file naming the line', () => {
    for (const [text, re] of [
      ['alice', /tokens:1: expected "name token/],
      ['alice 12345678 write extra', /tokens:1: expected/],
      ['\nal ice 12345678 write', /tokens:2: expected/],
      ['-alice 12345678', /tokens:1: name "-alice"/],
      ['alice short', /tokens:1: a token must be 8-512/],
      ['alice 12345678 admin', /tokens:1: permission must be read or write/],
      ['alice 12345678\nalice 87654321', /tokens:2: name "alice" given twice/],
      ['alice 12345678\nbob 12345678', /tokens:2: the token of "bob" is already another name's/],
      ['# nothing\n', /no tokens/],
    ] as const) {
      assert.throws(() => parseTokens(text), (e: Error & { code?: string }) => e.code === 'BAD_OPTION' && re.test(e.message), text);
    }
  });

  it('--token is "operator"; a name or secret used twice across --token and the file is refused', () => {
    assert.deepEqual(identities('t0ken', [{ name: 'alice', token: 'alice-secret', permission: 'read' }]).map((i) => i.name), ['operator', 'alice']);
    assert.throws(() => identities('same-secret', [{ name: 'alice', token: 'same-secret', permission: 'write' }]), /also another name's/);
    assert.throws(() => identities('x', [{ name: 'operator', token: 'other-secret', permission: 'write' }]), /"operator" given twice/);
    assert.deepEqual(identities(undefined, []), []);
  });

  it('identifies the presented token, and nothing else', () => {
    const table = new TokenTable(identities('op', [{ name: 'alice', token: 'alice-secret', permission: 'write' }, { name: 'noc', token: 'noc-secret', permission: 'read' }]));
    assert.deepEqual(table.identify('alice-secret'), { name: 'alice', permission: 'write' });
    assert.deepEqual(table.identify('noc-secret'), { name: 'noc', permission: 'read' });
    assert.deepEqual(table.identify('op'), { name: 'operator', permission: 'write' });
    for (const bad of [undefined, '', 'alice-secre', 'alice-secret ', 'ALICE-SECRET', 'x'.repeat(100_000)]) assert.equal(table.identify(bad), undefined);
  });
});
