#![no_main]
use libfuzzer_sys::fuzz_target;
use xlns_controlplane::ppp::ipv6cp::Repr;

fuzz_target!(|data: &[u8]| {
    if let Ok(repr) = Repr::from_bytes(data) {
        let bytes = repr.to_bytes();
        assert_eq!(bytes.len(), repr.buffer_len());
        assert_eq!(
            Repr::from_bytes(&bytes).expect("emitted IPv6CP re-parses"),
            repr
        );
    }
});
