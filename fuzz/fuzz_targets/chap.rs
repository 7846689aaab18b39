#![no_main]
use libfuzzer_sys::fuzz_target;
use xlns_controlplane::ppp::chap::Repr;
use xlns_controlplane::ppp::mschapv2::{self, FailureMessage, ResponseValue};

fuzz_target!(|data: &[u8]| {
    let Ok(repr) = Repr::from_bytes(data) else {
        return;
    };
    let bytes = repr.to_bytes();
    assert_eq!(bytes.len(), repr.buffer_len());
    assert_eq!(
        Repr::from_bytes(&bytes).expect("emitted CHAP re-parses"),
        repr
    );
    match &repr {
        Repr::Challenge { value, .. } => {
            let _ = mschapv2::parse_challenge(value);
        }
        Repr::Response { value, name, .. } => {
            // Interpret the Value as an MS-CHAPv2 Response (RFC 2759 §4).
            if let Ok(response) = ResponseValue::parse(value) {
                assert_eq!(
                    ResponseValue::parse(&response.to_bytes()).expect("emitted value re-parses"),
                    response
                );
                let _ = mschapv2::verify_response(name, "password", &[0x5A; 16], &response, "");
            }
        }
        Repr::Failure { message, .. } => {
            if let Ok(failure) = FailureMessage::parse(message) {
                let text = failure.to_string();
                assert_eq!(
                    FailureMessage::parse(text.as_bytes()).expect("emitted Failure re-parses"),
                    failure
                );
            }
        }
        Repr::Success { .. } => {}
    }
});
