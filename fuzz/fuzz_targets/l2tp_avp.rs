#![no_main]
//! AVP iterator (RFC 2661 §4.1), typed decoding and unhiding (§4.3) with a fixed secret
//! and random vector: no panic, and an unhidden value is bounded by the hidden one.
use libfuzzer_sys::fuzz_target;
use xlns_controlplane::l2tp::avp::AvpIter;
use xlns_controlplane::l2tp::{Avp, hidden};

const SECRET: &[u8] = b"fuzz secret";
const RANDOM_VECTOR: [u8; 16] = [7; 16];

fuzz_target!(|data: &[u8]| {
    for avp in AvpIter::new(data) {
        let Ok(avp) = avp else {
            break;
        };
        assert!(avp.length() >= 6 && avp.value().len() == avp.length() - 6);
        if avp.vendor_id() == 0 {
            if let Ok(Some(typed)) = Avp::decode(avp.attr_type(), avp.value()) {
                // Reserved fields (Call Errors, ACCM) are zeroed on emit, so compare
                // decoded values, not bytes.
                let mut out = Vec::new();
                typed.emit(&mut out).expect("a decoded value fits an AVP");
                assert_eq!(Avp::decode(avp.attr_type(), &out[6..]), Ok(Some(typed)));
            }
        }
        if let Ok(clear) = hidden::unhide(avp.attr_type(), SECRET, &RANDOM_VECTOR, avp.value()) {
            assert!(clear.len() + 2 <= avp.value().len());
        }
    }
});
