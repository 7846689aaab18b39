//! IP-level steps shared by both directions: header validation, TTL / hop limit
//! decrement with incremental checksum (RFC 1624), TCP MSS clamping.
//!
//! Every function takes the buffer and absolute offsets, checks its own bounds, and never
//! panics.

use super::{DropReason, csum, rd16, wr16};

pub const IPV4_HEADER_LEN: usize = 20;
pub const IPV6_HEADER_LEN: usize = 40;
pub const PROTO_ICMP: u8 = 1;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const PROTO_ICMPV6: u8 = 58;

/// A validated IPv4 header.
#[derive(Debug, Clone, Copy)]
pub struct V4 {
    /// Header length (IHL * 4).
    pub header_len: usize,
    /// Total length.
    pub total_len: usize,
}

/// Validate the IPv4 header at `ip`, the datagram ending at or before `end` (RFC 791
/// §3.1): version 4, IHL >= 5, total length covering the header and inside the frame,
/// header checksum correct (RFC 1812 §5.2.2).
#[inline(always)]
pub fn ipv4(buf: &[u8], ip: usize, end: usize) -> Result<V4, DropReason> {
    if end < ip + IPV4_HEADER_LEN || buf.len() < end {
        return Err(DropReason::Truncated);
    }
    let first = buf[ip];
    if first >> 4 != 4 {
        return Err(DropReason::BadIpHeader);
    }
    let header_len = usize::from(first & 0x0f) * 4;
    if header_len < IPV4_HEADER_LEN {
        return Err(DropReason::BadIpHeader);
    }
    let total_len = usize::from(rd16(buf, ip + 2));
    if total_len < header_len {
        return Err(DropReason::BadLength);
    }
    if ip + total_len > end {
        return Err(DropReason::Truncated);
    }
    let acc = match buf.get(ip..ip + header_len) {
        Some(header) => match <&[u8; IPV4_HEADER_LEN]>::try_from(header) {
            Ok(fixed) => csum::sum20(fixed),
            Err(_) => csum::sum(header),
        },
        None => return Err(DropReason::Truncated),
    };
    if csum::fold(acc) != 0xffff {
        return Err(DropReason::BadChecksum);
    }
    Ok(V4 {
        header_len,
        total_len,
    })
}

/// Validate the IPv6 header at `ip` (RFC 8200 §3); returns the packet's total length.
#[inline(always)]
pub fn ipv6(buf: &[u8], ip: usize, end: usize) -> Result<usize, DropReason> {
    if end < ip + IPV6_HEADER_LEN || buf.len() < end {
        return Err(DropReason::Truncated);
    }
    if buf[ip] >> 4 != 6 {
        return Err(DropReason::BadIpHeader);
    }
    let total_len = IPV6_HEADER_LEN + usize::from(rd16(buf, ip + 4));
    if ip + total_len > end {
        return Err(DropReason::Truncated);
    }
    Ok(total_len)
}

/// Whether the IPv4 datagram at `ip` is a fragment (MF set or offset non-zero).
#[inline]
pub fn v4_is_fragment(buf: &[u8], ip: usize) -> bool {
    rd16(buf, ip + 6) & 0x3fff != 0
}

/// Whether the IPv4 datagram at `ip` has a non-zero fragment offset (so no L4 header).
#[inline]
pub fn v4_is_later_fragment(buf: &[u8], ip: usize) -> bool {
    rd16(buf, ip + 6) & 0x1fff != 0
}

/// Decrement the TTL of a validated IPv4 header, patching the checksum incrementally
/// (RFC 1624 eqn. 3 on the TTL/protocol word; RFC 1812 §5.3.1). Fails when the TTL
/// would reach 0.
#[inline(always)]
pub fn decrement_ttl(buf: &mut [u8], ip: usize) -> Result<(), DropReason> {
    // TTL, protocol and checksum: one bounds check for the four octets.
    let Some(Ok(f)) = buf.get_mut(ip + 8..ip + 12).map(<&mut [u8; 4]>::try_from) else {
        return Err(DropReason::Truncated);
    };
    if f[0] <= 1 {
        return Err(DropReason::TtlExpired);
    }
    let checksum = csum::ttl_decremented(u16::from_be_bytes([f[2], f[3]]));
    f[0] -= 1;
    f[2..4].copy_from_slice(&checksum.to_be_bytes());
    Ok(())
}

/// Decrement the hop limit of a validated IPv6 header (RFC 8200 §3).
#[inline(always)]
pub fn decrement_hop_limit(buf: &mut [u8], ip: usize) -> Result<(), DropReason> {
    let hop_limit = buf[ip + 7];
    if hop_limit <= 1 {
        return Err(DropReason::TtlExpired);
    }
    buf[ip + 7] = hop_limit - 1;
    Ok(())
}

/// Whether `addr` lies in `prefix/len`.
#[inline]
pub fn v6_in_prefix(addr: &[u8], prefix: &[u8; 16], len: u8) -> bool {
    let Ok(addr) = <[u8; 16]>::try_from(addr) else {
        return false;
    };
    let diff = u128::from_be_bytes(addr) ^ u128::from_be_bytes(*prefix);
    match len {
        0 => true,
        len if len >= 128 => diff == 0,
        len => diff >> (128 - u32::from(len)) == 0,
    }
}

/// On a TCP SYN in `buf[tcp..end]`, lower an MSS option above `max` to `max`, patching
/// the TCP checksum incrementally (RFC 879, RFC 1624). Anything malformed is left alone:
/// the receiver judges the segment.
#[inline]
pub fn clamp_mss(buf: &mut [u8], tcp: usize, end: usize, max: u16) {
    if end > buf.len() || end < tcp + 20 {
        return;
    }
    // SYN flag (RFC 793 §3.1).
    if buf[tcp + 13] & 0x02 == 0 {
        return;
    }
    let data_offset = usize::from(buf[tcp + 12] >> 4) * 4;
    if data_offset <= 20 || tcp + data_offset > end {
        return;
    }
    let mut at = 20;
    while at < data_offset {
        match buf[tcp + at] {
            0 => return,
            1 => at += 1,
            kind => {
                if at + 1 >= data_offset {
                    return;
                }
                let len = usize::from(buf[tcp + at + 1]);
                if len < 2 || at + len > data_offset {
                    return;
                }
                if kind == 2 && len == 4 {
                    let mss = rd16(buf, tcp + at + 2);
                    if mss > max {
                        wr16(buf, tcp + at + 2, max);
                        let checksum = csum::update16_at(rd16(buf, tcp + 16), at + 2, mss, max);
                        wr16(buf, tcp + 16, checksum);
                    }
                    return;
                }
                at += len;
            }
        }
    }
}
