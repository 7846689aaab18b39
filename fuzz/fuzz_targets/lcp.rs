#![no_main]
use libfuzzer_sys::fuzz_target;
use xlns_controlplane::ppp::lcp::Repr;
use xlns_controlplane::ppp::wire::{self, OptionIter};

fuzz_target!(|data: &[u8]| {
    if let Ok(raw) = wire::Repr::from_bytes(data) {
        for option in OptionIter::new(raw.data) {
            if option.is_err() {
                break;
            }
        }
    }
    if let Ok(repr) = Repr::from_bytes(data) {
        let bytes = repr.to_bytes();
        assert_eq!(bytes.len(), repr.buffer_len());
        assert_eq!(
            Repr::from_bytes(&bytes).expect("emitted LCP re-parses"),
            repr
        );
    }
});
