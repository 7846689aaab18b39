//! Ethernet view and Repr, and the Ethernet/IP/UDP frame parser: no input panics, and
//! whatever parses re-emits to something that parses back to the same value.
#![no_main]
use libfuzzer_sys::fuzz_target;
use xlns_dataplane::wire::ethernet::{Packet, Repr};
use xlns_dataplane::wire::frame::{self, Checksums};

fuzz_target!(|data: &[u8]| {
    if let Ok(packet) = Packet::new_checked(data) {
        let _ = (packet.vlans(), packet.ethertype(), packet.src_addr());
        assert_eq!(packet.payload().len(), data.len() - packet.header_len());
        if let Ok(repr) = Repr::parse(&packet) {
            // The header re-emits byte for byte.
            let mut out = [0u8; xlns_dataplane::wire::ethernet::MAX_HEADER_LEN];
            repr.emit(&mut Packet::new_unchecked(&mut out[..]));
            assert_eq!(&out[..repr.buffer_len()], &data[..repr.buffer_len()]);
        }
    }
    for checksums in [Checksums::Verify, Checksums::Ignore] {
        if let Ok(parsed) = frame::parse(data, checksums) {
            let end = parsed.payload_offset + parsed.payload.len();
            assert_eq!(&data[parsed.payload_offset..end], parsed.payload);
            let mut out = [0u8; 65_600];
            let len = parsed
                .repr
                .emit(parsed.payload, &mut out)
                .expect("a parsed frame re-emits");
            let again =
                frame::parse(&out[..len], Checksums::Verify).expect("re-emitted frame parses");
            assert_eq!(again.repr, parsed.repr);
            assert_eq!(again.payload, parsed.payload);
        }
    }
});
