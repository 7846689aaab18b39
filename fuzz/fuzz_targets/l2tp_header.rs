#![no_main]
//! L2TP header view and HeaderRepr (RFC 2661 §3.1): no panic, and a header that parses
//! re-emits to one that parses to the same value with the same payload.
use libfuzzer_sys::fuzz_target;
use xlns_dataplane::wire::l2tp::{HeaderRepr, Packet};

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = Packet::new_checked(data) else {
        return;
    };
    let payload = packet.payload();
    let _ = (
        packet.ns(),
        packet.nr(),
        packet.offset_size(),
        packet.length(),
    );
    let Ok(repr) = HeaderRepr::parse(&packet) else {
        panic!("new_checked accepted a header HeaderRepr::parse rejects");
    };
    let mut out = vec![0u8; repr.buffer_len() + payload.len()];
    repr.emit(&mut Packet::new_unchecked(&mut out[..]), payload.len());
    out[repr.buffer_len()..].copy_from_slice(payload);
    let again = Packet::new_checked(&out[..]).expect("re-emitted header must parse");
    assert_eq!(HeaderRepr::parse(&again), Ok(repr));
    assert_eq!(again.payload(), payload);
});
