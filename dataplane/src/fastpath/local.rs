//! Traffic from a subscriber to the LNS's own PPP-side address ([`WorkerCtx::gateway_v4`]):
//! ICMP echo requests are answered by the worker (clients ping their gateway), encapsulated
//! back into the same session; everything else is dropped as `to-lns`.
//!
//! The reply is the request rewritten in place (RFC 792): source and destination swapped
//! (which leaves the IPv4 header checksum unchanged), TTL 64 and type 0, both checksums
//! patched incrementally (RFC 1624); identifier, sequence, data and IP options are
//! echoed. The request's ICMP checksum is verified first (`bad-checksum`). Fragmented
//! requests are not reassembled (`to-lns`). Both the request (upstream) and the reply
//! (downstream) are counted for the session.
//!
//! [`WorkerCtx::gateway_v4`]: super::WorkerCtx::gateway_v4

use super::inner::{PROTO_ICMP, V4, v4_is_fragment};
use super::template::{encapsulate, place_record};
use super::{DropReason, SessionStats, Verdict, WorkerState, csum, rd16, wr16};
use crate::session::SessionRecord;

const ECHO_REQUEST: u8 = 8;
const ECHO_REPLY: u8 = 0;
const REPLY_TTL: u8 = 64;

/// Answer the IPv4 packet at `buf[ip..]` (validated, from the session's subscriber, to the
/// gateway address), or refuse it.
#[inline]
pub(super) fn answer_v4<S: SessionStats>(
    buf: &mut [u8],
    ip: usize,
    v4: V4,
    record: &SessionRecord,
    slot: u32,
    state: &mut WorkerState<S>,
) -> Result<Verdict, DropReason> {
    if buf[ip + 9] != PROTO_ICMP || v4_is_fragment(buf, ip) {
        return Err(DropReason::ToLns);
    }
    let icmp = ip + v4.header_len;
    let end = ip + v4.total_len;
    if end < icmp + 8 {
        return Err(DropReason::Truncated);
    }
    if buf[icmp] != ECHO_REQUEST || buf[icmp + 1] != 0 {
        return Err(DropReason::ToLns);
    }
    if csum::fold(csum::sum(&buf[icmp..end])) != 0xffff {
        return Err(DropReason::BadChecksum);
    }
    state.stats.upstream(slot, v4.total_len);

    let mut src = [0u8; 4];
    src.copy_from_slice(&buf[ip + 12..ip + 16]);
    buf.copy_within(ip + 16..ip + 20, ip + 12);
    buf[ip + 16..ip + 20].copy_from_slice(&src);
    let old = rd16(buf, ip + 8);
    let new = (u16::from(REPLY_TTL) << 8) | (old & 0x00ff);
    wr16(buf, ip + 8, new);
    let checksum = csum::update16(rd16(buf, ip + 10), old, new);
    wr16(buf, ip + 10, checksum);

    let old = rd16(buf, icmp);
    let new = u16::from(ECHO_REPLY) << 8;
    wr16(buf, icmp, new);
    let checksum = csum::update16(rd16(buf, icmp + 2), old, new);
    wr16(buf, icmp + 2, checksum);

    let d = place_record(buf, ip, slot, record);
    let (offset, len) = encapsulate(buf, ip, v4.total_len, false, &d, &mut state.stats)?;
    state.stats.downstream(slot, v4.total_len);
    Ok(Verdict::Reply { offset, len })
}
