#![no_main]
use libfuzzer_sys::fuzz_target;
use xlns_dataplane::wire::ppp::{HeaderRepr, Packet};

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = Packet::new_checked(data) else {
        return;
    };
    let Ok(repr) = HeaderRepr::parse(&packet) else {
        return;
    };
    assert_eq!(repr.buffer_len(), packet.header_len());
    let payload = packet.payload();
    let mut buf = vec![0u8; repr.buffer_len() + payload.len()];
    repr.emit(&mut buf);
    buf[repr.buffer_len()..].copy_from_slice(payload);
    let reparsed = Packet::new_checked(&buf[..]).expect("emitted header re-checks");
    assert_eq!(
        HeaderRepr::parse(&reparsed).expect("emitted header re-parses"),
        repr
    );
    assert_eq!(reparsed.payload(), payload);
});
