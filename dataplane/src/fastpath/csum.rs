//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624), written for the
//! per-packet path: no allocation, 32-bit words summed into a 64-bit accumulator.

/// One's complement sum of `data` as big-endian 16-bit words (an odd last byte is padded
/// with zero, RFC 1071 §4.1), not folded and not complemented.
#[inline(always)]
pub fn sum(data: &[u8]) -> u64 {
    let mut acc: u64 = 0;
    let mut words = data.chunks_exact(4);
    for word in &mut words {
        acc += u64::from(u32::from_be_bytes([word[0], word[1], word[2], word[3]]));
    }
    let rest = words.remainder();
    let mut pairs = rest.chunks_exact(2);
    for pair in &mut pairs {
        acc += u64::from(u16::from_be_bytes([pair[0], pair[1]]));
    }
    if let [last] = pairs.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
}

/// [`sum`] of the 20-octet IPv4 header without options: five 32-bit words, no loop.
#[inline(always)]
pub fn sum20(h: &[u8; 20]) -> u64 {
    let w = |i: usize| u64::from(u32::from_be_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]));
    w(0) + w(4) + w(8) + w(12) + w(16)
}

/// Whether the 20-octet IPv4 header `h` has a correct header checksum, i.e.
/// `fold(sum20(h)) == 0xffff`. The one's complement sum does not depend on byte order
/// (RFC 1071 §2(B)) nor on the word size it is computed in (§2(C), "parallel
/// summation"): the header is summed as two 64-bit words and one 32-bit word as the
/// machine reads them, with end-around carry, then folded to 16 bits.
///
/// Exactness of the comparison: the 64-bit end-around sum `s` is congruent to the 16-bit
/// word sum `S` modulo 0xffff (which divides 2^64 - 1), and `s` is 0 only if every octet
/// is. Three folds leave `x <= 0x10001`, so `x == 0xffff` exactly when `S` is a non-zero
/// multiple of 0xffff, which is `fold(S) == 0xffff`.
#[inline(always)]
pub fn verify20(h: &[u8; 20]) -> bool {
    let (a, rest) = h.split_first_chunk::<8>().unwrap_or((&[0; 8], &[]));
    let (b, rest) = rest.split_first_chunk::<8>().unwrap_or((&[0; 8], &[]));
    let c = rest.first_chunk::<4>().unwrap_or(&[0; 4]);
    let (s, o1) = u64::from_ne_bytes(*a).overflowing_add(u64::from_ne_bytes(*b));
    let (s, o2) = s.overflowing_add(u64::from(u32::from_ne_bytes(*c)) + u64::from(o1));
    // With `o2` set, `s` is below 2^32 + 1: adding the carry cannot overflow.
    let s = s + u64::from(o2);
    let x = (s & 0xffff_ffff) + (s >> 32);
    let x = (x & 0xffff) + (x >> 16);
    let x = (x & 0xffff) + (x >> 16);
    x == 0xffff
}

/// Fold a 64-bit accumulator to 16 bits (end-around carry), not complemented.
#[inline(always)]
pub fn fold(mut acc: u64) -> u16 {
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    let mut acc = acc as u32;
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    acc as u16
}

/// The checksum field value for data summing to `acc`.
#[inline(always)]
pub fn finish(acc: u64) -> u16 {
    !fold(acc)
}

/// RFC 1624 eqn. 3: the checksum after one 16-bit word of the covered data changed from
/// `old` to `new`: HC' = ~(~HC + ~m + m').
#[inline(always)]
pub fn update16(checksum: u16, old: u16, new: u16) -> u16 {
    !fold(u64::from(!checksum) + u64::from(!old) + u64::from(new))
}

/// [`update16`] for a word that was 0 (a length field left zero in a template):
/// `~(~HC + ~0 + m')`, folded in 32 bits.
#[inline(always)]
pub fn add16(checksum: u16, new: u16) -> u16 {
    let x = u32::from(!checksum) + 0xffff + u32::from(new);
    let x = (x & 0xffff) + (x >> 16);
    let x = (x & 0xffff) + (x >> 16);
    !(x as u16)
}

/// [`update16`] for the TTL / protocol word after a TTL decrement (RFC 1624 eqn. 3 with
/// `~m + m' = 0xfeff` whatever the word was, RFC 1812 §5.3.1), folded in 32 bits.
#[inline(always)]
pub fn ttl_decremented(checksum: u16) -> u16 {
    let x = u32::from(!checksum) + 0xfeff;
    let x = (x & 0xffff) + (x >> 16);
    !(x as u16)
}

/// [`update16`] for a 16-bit field at `offset` from the start of the covered data: a
/// field at an odd offset straddles two words, which in one's complement arithmetic is
/// the same as the byte-swapped value at an even offset (RFC 1071 §2(B)).
#[inline]
pub fn update16_at(checksum: u16, offset: usize, old: u16, new: u16) -> u16 {
    if offset % 2 == 0 {
        update16(checksum, old, new)
    } else {
        update16(checksum, old.swap_bytes(), new.swap_bytes())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: 0001 f203 f4f5 f6f7 sums to ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(&data)), 0xddf2);
        assert_eq!(finish(sum(&data)), !0xddf2);
    }

    #[test]
    fn sum20_equals_sum() {
        let h: [u8; 20] = core::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(0xa5));
        assert_eq!(sum20(&h), sum(&h));
    }

    #[test]
    fn verify20_carries() {
        // All-ones words: every 64-bit add carries; the sum is a multiple of 0xffff.
        assert!(verify20(&[0xff; 20]));
        assert!(!verify20(&[0; 20]));
        let mut h = [0xff; 20];
        h[19] = 0xfe;
        assert_eq!(verify20(&h), fold(sum20(&h)) == 0xffff);
    }

    proptest! {
        #[test]
        fn verify20_equals_fold_of_sum20(h in proptest::array::uniform20(any::<u8>()), fix in any::<bool>()) {
            let mut h = h;
            if fix {
                h[10] = 0;
                h[11] = 0;
                let checksum = finish(sum20(&h));
                h[10..12].copy_from_slice(&checksum.to_be_bytes());
            }
            prop_assert_eq!(verify20(&h), fold(sum20(&h)) == 0xffff);
            if fix {
                prop_assert!(verify20(&h));
            }
        }
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(fold(sum(&[0x12, 0x34, 0x56])), 0x1234 + 0x5600);
    }

    proptest! {
        #[test]
        fn add16_and_ttl_decremented_equal_update16(c in any::<u16>(), new in any::<u16>(), word in 0x0100u16..) {
            prop_assert_eq!(add16(c, new), update16(c, 0, new));
            prop_assert_eq!(ttl_decremented(c), update16(c, word, word - 0x0100));
        }

        #[test]
        fn incremental_equals_full(
            mut data in proptest::collection::vec(any::<u8>(), 4..64),
            at in 0usize..60,
            new in any::<u16>(),
        ) {
            let at = at % (data.len() - 1);
            let before = finish(sum(&data));
            let old = u16::from_be_bytes([data[at], data[at + 1]]);
            data[at..at + 2].copy_from_slice(&new.to_be_bytes());
            let after = finish(sum(&data));
            let incremental = update16_at(before, at, old, new);
            // 0x0000 and 0xffff are the same value in one's complement.
            prop_assert!(
                incremental == after || (incremental ^ after == 0xffff && (after == 0 || after == 0xffff)),
                "full {after:#06x}, incremental {incremental:#06x}"
            );
        }
    }
}
