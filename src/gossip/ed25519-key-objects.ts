import { createPrivateKey, createPublicKey, type KeyObject, sign, verify } from 'node:crypto';
import { publicKeyFromRaw } from '@libp2p/crypto/keys';
import type { Ed25519PrivateKey, Ed25519PublicKey, PrivateKey } from '@libp2p/interface';

/** Distinct signers worth keeping a key object for (a cluster's nodes); the cache starts over beyond. */
const MAX_CACHED_PUBLIC_KEYS = 4096;
const SIGNATURE_BYTES = 64;

type Signable = Uint8Array | { subarray(): Uint8Array };

let installed = false;
const publicKeyObjects = new Map<string, KeyObject>();
const privateKeyObjects = new WeakMap<object, KeyObject>();

/**
 * Makes @libp2p/crypto's Ed25519 keys sign and verify with a cached node:crypto key object. The library
 * builds a new key object from a JWK for every call (createPublicKey / createPrivateKey), which cost half
 * as much again as the verification itself: in a profile of 20 agents booting, a third of the time of
 * every gossipsub signature check (about 2.5 % of all CPU). gossipsub decodes the signer's key afresh
 * for each message, so public key objects are cached by key bytes, not per key instance.
 * `sample` (any Ed25519 private key, e.g. the node's identity) gives the library's key classes.
 */
export function installEd25519KeyObjectCache(sample: PrivateKey): void {
  if (installed || sample.type !== 'Ed25519') return;
  installed = true;
  const privateKey = sample as Ed25519PrivateKey;
  const publicPrototype = Object.getPrototypeOf(
    publicKeyFromRaw(privateKey.publicKey.raw),
  ) as Ed25519PublicKey;
  const privatePrototype = Object.getPrototypeOf(privateKey) as Ed25519PrivateKey;

  publicPrototype.verify = function (this: Ed25519PublicKey, data, sig, options) {
    options?.signal?.throwIfAborted();
    if (sig.byteLength !== SIGNATURE_BYTES) throw new TypeError('"sig" must be 64 bytes in length.');
    return verify(null, bytesOf(data), publicKeyObject(this.raw), sig);
  };
  privatePrototype.sign = function (this: Ed25519PrivateKey, message, options) {
    options?.signal?.throwIfAborted();
    let key = privateKeyObjects.get(this);
    if (key === undefined) {
      key = createPrivateKey({ format: 'jwk', key: jwk(this.raw.subarray(32), this.raw.subarray(0, 32)) });
      privateKeyObjects.set(this, key);
    }
    return sign(null, bytesOf(message), key);
  };
}

function publicKeyObject(raw: Uint8Array): KeyObject {
  const id = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64url');
  let key = publicKeyObjects.get(id);
  if (key === undefined) {
    key = createPublicKey({ format: 'jwk', key: jwk(raw) });
    if (publicKeyObjects.size >= MAX_CACHED_PUBLIC_KEYS) publicKeyObjects.clear();
    publicKeyObjects.set(id, key);
  }
  return key;
}

function jwk(publicRaw: Uint8Array, privateRaw?: Uint8Array) {
  const b64 = (bytes: Uint8Array) =>
    Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
  return {
    kty: 'OKP',
    crv: 'Ed25519',
    x: b64(publicRaw),
    ...(privateRaw === undefined ? {} : { d: b64(privateRaw) }),
  };
}

function bytesOf(data: Signable): Uint8Array {
  return data instanceof Uint8Array ? data : data.subarray();
}
