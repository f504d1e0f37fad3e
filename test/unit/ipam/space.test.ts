import { describe, expect, test } from 'vitest';
import { AllocationTable } from '../../../src/ipam/allocator.js';
import { chooseDonation, isUsable, ownedBlocks, usableWithin } from '../../../src/ipam/space.js';

const span = (start: number, end: number) => ({ start, end });

describe('usable addresses', () => {
  test('each owned block loses its first and last address; tiny blocks give nothing', () => {
    const blocks = ownedBlocks([span(0, 16), span(16, 24), span(24, 26), span(40, 41)]);
    expect(blocks).toEqual([span(0, 16), span(16, 24), span(24, 26), span(40, 41)]);
    expect([0, 15, 16, 23, 24, 25, 40].map((a) => isUsable(blocks, a))).toEqual(Array(7).fill(false));
    expect([1, 14, 17, 22].map((a) => isUsable(blocks, a))).toEqual([true, true, true, true]);
    expect(usableWithin(blocks, span(0, 64))).toBe(14 + 6);
  });

  test('joining ranges merges blocks, so reserved addresses only become usable', () => {
    const apart = ownedBlocks([span(0, 16), span(16, 32)]);
    const joined = ownedBlocks([span(0, 32)]);
    expect(joined).toEqual([span(0, 32)]);
    for (let a = 0; a < 32; a++) if (isUsable(apart, a)) expect(isUsable(joined, a)).toBe(true);
  });
});

describe('first fit', () => {
  test('lowest usable free address, skipping reserved and taken ones', () => {
    const table = new AllocationTable();
    const blocks = ownedBlocks([span(0, 8), span(16, 24)]);
    const order: number[] = [];
    for (let i = 0; i < 12; i++) {
      const address = table.firstFree(blocks);
      if (address === undefined) break;
      table.add(`c${i}`, address);
      order.push(address);
    }
    expect(order).toEqual([1, 2, 3, 4, 5, 6, 17, 18, 19, 20, 21, 22]);
    table.remove('c2');
    expect(table.firstFree(blocks)).toBe(3);
  });
});

describe('choosing a donation', () => {
  test('the upper half of the largest free aligned block', () => {
    // Owns 0..1024 with the gateway at 1 and pods at 2..9: the largest free block is 512..1024.
    const allocated = [1, 2, 3, 4, 5, 6, 7, 8, 9];
    expect(chooseDonation([span(0, 1024)], allocated, 16)).toEqual(span(768, 1024));
  });

  test('never leaves an allocated address at a position that becomes reserved', () => {
    // 0..128 with pods at 1 and 95: any gift from 96..128 would make 95 the broadcast of 64..96, so
    // the gift comes from 32..64 instead.
    expect(chooseDonation([span(0, 128)], [1, 95], 8)).toEqual(span(48, 64));
    // 0..64 with pods at 1 and 31: every gift splits off 0..32, whose broadcast is 31.
    expect(chooseDonation([span(0, 64)], [1, 31], 8)).toBeUndefined();
  });

  test('nothing below the minimum size', () => {
    expect(chooseDonation([span(0, 32)], [1], 16)).toBeUndefined();
    expect(chooseDonation([span(0, 64)], [1], 16)).toEqual(span(48, 64));
  });
});
