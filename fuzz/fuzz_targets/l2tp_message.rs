#![no_main]
//! Whole control datagrams (RFC 2661 §3.1, §4, §6), with and without a tunnel secret:
//! no panic, and a parsed message emits to bytes that parse to the same value.
use libfuzzer_sys::fuzz_target;
use xlns_controlplane::l2tp::{ControlMessage, ControlPacket};

const SECRET: &[u8] = b"fuzz secret";

fuzz_target!(|data: &[u8]| {
    for secret in [None, Some(SECRET)] {
        if let Ok(packet) = ControlPacket::parse(data, secret) {
            if let Some(message) = packet.message() {
                let _ = message.validate();
                let _ = message.unknown_mandatory();
            }
            let bytes = packet.emit(None).expect("a parsed packet re-emits");
            assert_eq!(ControlPacket::parse(&bytes, None), Ok(packet));
        }
        // The same bytes as a bare message body.
        if let Ok(message) = ControlMessage::parse(data, secret) {
            let bytes = message.to_bytes(None).expect("a parsed message re-emits");
            assert_eq!(ControlMessage::parse(&bytes, None), Ok(message));
        }
    }
});
