//! Result and error codes: the Result Code AVP values of RFC 2661 §4.4.2 (StopCCN and
//! CDN), its general error codes, and the PPP Disconnect Cause codes of RFC 3145 §3.
//!
//! Each enum carries its number (`code()`, `from_code()`) and the RFC's description
//! (`description()`). Unknown numbers are not an error at this level: `from_code`
//! returns `None` and the raw number stays in [`ResultCode`](super::message::ResultCode).

macro_rules! code_enum {
    (
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $code:literal => $desc:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u16)]
        pub enum $name {
            $( $(#[$vmeta])* #[doc = $desc] $variant = $code, )*
        }

        impl $name {
            /// Every defined value, in numeric order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The number on the wire.
            pub const fn code(self) -> u16 {
                self as u16
            }

            /// The value for a number, if defined.
            pub const fn from_code(code: u16) -> Option<$name> {
                match code {
                    $( $code => Some($name::$variant), )*
                    _ => None,
                }
            }

            /// The RFC's description.
            pub const fn description(self) -> &'static str {
                match self {
                    $( $name::$variant => $desc, )*
                }
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                write!(f, "{} ({})", self.description(), self.code())
            }
        }
    };
}

code_enum! {
    /// Result Code values for StopCCN (RFC 2661 §4.4.2).
    StopCcnResult {
        GeneralClear = 1 => "General request to clear control connection",
        GeneralError = 2 => "General error--Error Code indicates the problem",
        AlreadyExists = 3 => "Control channel already exists",
        NotAuthorized = 4 => "Requester is not authorized to establish a control channel",
        UnsupportedVersion = 5 => "The protocol version of the requester is not supported",
        ShuttingDown = 6 => "Requester is being shut down",
        FsmError = 7 => "Finite State Machine error",
    }
}

code_enum! {
    /// Result Code values for CDN (RFC 2661 §4.4.2).
    CdnResult {
        LossOfCarrier = 1 => "Call disconnected due to loss of carrier",
        GeneralError = 2 => "Call disconnected for the reason indicated in error code",
        Administrative = 3 => "Call disconnected for administrative reasons",
        TemporaryLackOfFacilities = 4 => "Call failed due to lack of appropriate facilities being available (temporary condition)",
        PermanentLackOfFacilities = 5 => "Call failed due to lack of appropriate facilities being available (permanent condition)",
        InvalidDestination = 6 => "Invalid destination",
        NoCarrier = 7 => "Call failed due to no carrier detected",
        Busy = 8 => "Call failed due to detection of a busy signal",
        NoDialTone = 9 => "Call failed due to lack of a dial tone",
        Timeout = 10 => "Call was not established within time allotted by LAC",
        NoFraming = 11 => "Call was connected but no appropriate framing was detected",
    }
}

code_enum! {
    /// General error codes carried in the Error Code field (RFC 2661 §4.4.2).
    GeneralError {
        NoError = 0 => "No general error",
        NoControlConnection = 1 => "No control connection exists yet for this LAC-LNS pair",
        BadLength = 2 => "Length is wrong",
        BadValue = 3 => "One of the field values was out of range or reserved field was non-zero",
        InsufficientResources = 4 => "Insufficient resources to handle this operation now",
        InvalidSessionId = 5 => "The Session ID is invalid in this context",
        VendorSpecific = 6 => "A generic vendor-specific error occurred in the LAC",
        TryAnother = 7 => "Try another",
        UnknownMandatoryAvp = 8 => "Session or tunnel was shutdown due to receipt of an unknown AVP with the M-bit set",
    }
}

code_enum! {
    /// Disconnect Code of the PPP Disconnect Cause Code AVP (RFC 3145 §3).
    PppDisconnectCode {
        NoInformation = 0 => "No information available",
        Administrative = 1 => "Administrative disconnect",
        LcpRenegotiationDisabled = 2 => "LCP renegotiation at LNS disabled; LNS expects proxy LCP information, LAC did not send it",
        NormalDisconnection = 3 => "Normal Disconnection, LCP Terminate-Request sent",
        CompulsoryEncryptionRefused = 4 => "Compulsory encryption required by a PPP peer was refused by the other",
        LcpFsmTimeout = 5 => "LCP: FSM Timeout error",
        NoRecognizableLcp = 6 => "No recognizable LCP packets were received",
        MagicNumberError = 7 => "LCP failure: Magic Number error; link possibly looped back",
        EchoTimeout = 8 => "LCP link failure: Echo Request timeout",
        UnexpectedEndpointDiscriminator = 9 => "Peer has unexpected Endpoint-Discriminator for existing MP bundle",
        UnexpectedMrru = 10 => "Peer has unexpected MRRU for existing MP bundle",
        UnexpectedShortSequence = 11 => "Peer has unexpected Short-Sequence-Number option for existing MP bundle",
        CallbackRefused = 12 => "Compulsory call-back required by a PPP peer was refused by the other",
        AuthFsmTimeout = 13 => "Authentication: FSM Timeout error",
        UnexpectedAuthName = 14 => "Peer has unexpected authenticated name for existing MP bundle",
        AuthProtocolUnacceptable = 15 => "PPP authentication failure: Authentication protocol unacceptable",
        AuthFailed = 16 => "PPP authentication failure: Authentication failed (bad name, password, or secret)",
        NcpFsmTimeout = 17 => "NCP: FSM Timeout error",
        NoNcps = 18 => "No NCPs available (all disabled or rejected); no NCPs went to Opened state",
        NcpAddressConvergence = 19 => "NCP failure: failed to converge on acceptable addresses",
        NcpNoAddressPermitted = 20 => "NCP failure: user not permitted to use any addresses",
    }
}

code_enum! {
    /// Direction field of the PPP Disconnect Cause Code AVP (RFC 3145 §2).
    PppDisconnectDirection {
        Global = 0 => "global error",
        AtPeer = 1 => "at peer",
        AtLocal = 2 => "at local",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;

    #[test]
    fn numbers_match_the_rfc() {
        assert_eq!(StopCcnResult::ALL.len(), 7);
        assert_eq!(StopCcnResult::FsmError.code(), 7);
        assert_eq!(StopCcnResult::from_code(0), None);
        assert_eq!(CdnResult::ALL.len(), 11);
        assert_eq!(CdnResult::from_code(11), Some(CdnResult::NoFraming));
        assert_eq!(CdnResult::from_code(12), None);
        assert_eq!(GeneralError::ALL.len(), 9);
        assert_eq!(GeneralError::UnknownMandatoryAvp.code(), 8);
        assert_eq!(PppDisconnectCode::ALL.len(), 21);
        assert_eq!(PppDisconnectCode::NcpNoAddressPermitted.code(), 20);
        for (index, code) in PppDisconnectCode::ALL.iter().enumerate() {
            assert_eq!(usize::from(code.code()), index);
            assert_eq!(PppDisconnectCode::from_code(code.code()), Some(*code));
        }
        assert_eq!(
            StopCcnResult::NotAuthorized.to_string(),
            "Requester is not authorized to establish a control channel (4)"
        );
    }
}
