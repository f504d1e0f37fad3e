import { generateKeyPair, publicKeyFromRaw } from '@libp2p/crypto/keys';
import { ed25519 } from '@noble/curves/ed25519.js';
import { Uint8ArrayList } from 'uint8arraylist';
import { describe, expect, it } from 'vitest';
import { installEd25519KeyObjectCache } from '../../../src/gossip/ed25519-key-objects.js';

const message = new TextEncoder().encode('weft topology record');

describe('installEd25519KeyObjectCache', async () => {
  const alice = await generateKeyPair('Ed25519');
  const bob = await generateKeyPair('Ed25519');
  // Signed by the library's own code, before the patch.
  const aliceSignedBefore = await alice.sign(message);
  const originalVerify = Object.getPrototypeOf(alice.publicKey).verify;
  installEd25519KeyObjectCache(alice);
  installEd25519KeyObjectCache(alice); // idempotent

  it('replaces the library key classes’ sign and verify', () => {
    expect(Object.getPrototypeOf(alice.publicKey).verify).not.toBe(originalVerify);
  });

  it('verifies signatures made by the library, and rejects them for other data or keys', async () => {
    // A fresh key instance per check, as gossipsub decodes the signer's key for every message.
    const alicePublic = () => publicKeyFromRaw(alice.publicKey.raw);
    expect(await alicePublic().verify(message, aliceSignedBefore)).toBe(true);
    // gossipsub passes a Uint8ArrayList (from another copy of the package than this test's).
    const list = new Uint8ArrayList(message.subarray(0, 5), message.subarray(5)) as unknown as Uint8Array;
    expect(await alicePublic().verify(list, aliceSignedBefore)).toBe(true);
    expect(await alicePublic().verify(new TextEncoder().encode('another record'), aliceSignedBefore)).toBe(
      false,
    );
    // Bob's key right after Alice's: the cache must not answer for the wrong key.
    expect(await publicKeyFromRaw(bob.publicKey.raw).verify(message, aliceSignedBefore)).toBe(false);
    expect(await alicePublic().verify(message, aliceSignedBefore)).toBe(true);
  });

  it('signs what an independent Ed25519 implementation accepts', async () => {
    for (const key of [alice, bob]) {
      const signature = await key.sign(message);
      expect(ed25519.verify(signature, message, key.publicKey.raw)).toBe(true);
      expect(ed25519.verify(signature, message, (key === alice ? bob : alice).publicKey.raw)).toBe(false);
    }
    expect(await alice.sign(message)).toEqual(aliceSignedBefore); // Ed25519 is deterministic
  });

  it('rejects a signature of the wrong length as the library does', () => {
    expect(() => alice.publicKey.verify(message, new Uint8Array(63))).toThrow(/64 bytes/);
  });
});
