//! MS-CHAPv2 (RFC 2759): the Response Value layout, the crypto of §8, the Success
//! (§5) and Failure (§6) messages, and the authenticator's verification.
//!
//! MS-CHAPv2 runs inside CHAP (algorithm 0x81): the Challenge Value is 16 octets
//! (§3), the Response Value is [`ResponseValue`] (§4), the Success message is
//! `"S=<40 uppercase hex> M=<text>"` (§5) and the Failure message is
//! [`FailureMessage`] (§6). Passwords are Unicode strings, hashed as UTF-16LE (§8.3).
//!
//! The user name hashed by [`challenge_hash`] excludes any `DOMAIN\` prefix (§8.2),
//! as pppd does; [`challenge_hash`] strips it itself.

use core::fmt;

use des::Des;
use des::cipher::{BlockEncrypt, KeyInit, generic_array::GenericArray};
use md4::Md4;
use sha1::{Digest, Sha1};

use super::{Error, Result};

/// Length of the Challenge Value in both directions (RFC 2759 §3, §4).
pub const CHALLENGE_LEN: usize = 16;

/// Interpret a CHAP Challenge Value as an MS-CHAPv2 Authenticator Challenge (§3).
pub fn parse_challenge(value: &[u8]) -> Result<[u8; CHALLENGE_LEN]> {
    value.try_into().map_err(|_| Error::BadLength {
        what: "MS-CHAPv2 Challenge Value",
        value: value.len(),
    })
}

mod field {
    use core::ops::Range;
    pub const PEER_CHALLENGE: Range<usize> = 0..16;
    pub const RESERVED: Range<usize> = 16..24;
    pub const NT_RESPONSE: Range<usize> = 24..48;
    pub const FLAGS: usize = 48;
    pub const LEN: usize = 49;
}

/// The 49-octet Response Value (RFC 2759 §4): Peer-Challenge (16), 8 reserved octets
/// (zero; ignored on receipt, zero on emission), NT-Response (24), Flags (1, zero
/// from a conforming peer; kept as received).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResponseValue {
    pub peer_challenge: [u8; 16],
    pub nt_response: [u8; 24],
    pub flags: u8,
}

impl ResponseValue {
    /// Length on the wire.
    pub const LEN: usize = field::LEN;

    /// Interpret a CHAP Response Value; it must be exactly 49 octets.
    pub fn parse(value: &[u8]) -> Result<ResponseValue> {
        if value.len() != field::LEN {
            return Err(Error::BadLength {
                what: "MS-CHAPv2 Response Value",
                value: value.len(),
            });
        }
        let mut peer_challenge = [0; 16];
        peer_challenge.copy_from_slice(&value[field::PEER_CHALLENGE]);
        let mut nt_response = [0; 24];
        nt_response.copy_from_slice(&value[field::NT_RESPONSE]);
        Ok(ResponseValue {
            peer_challenge,
            nt_response,
            flags: value[field::FLAGS],
        })
    }

    /// Length on the wire.
    pub const fn buffer_len(&self) -> usize {
        field::LEN
    }

    /// Write the value into a buffer of at least 49 octets.
    pub fn emit(&self, buffer: &mut [u8]) {
        buffer[field::PEER_CHALLENGE].copy_from_slice(&self.peer_challenge);
        buffer[field::RESERVED].fill(0);
        buffer[field::NT_RESPONSE].copy_from_slice(&self.nt_response);
        buffer[field::FLAGS] = self.flags;
    }

    /// The value as bytes.
    pub fn to_bytes(&self) -> [u8; 49] {
        let mut buffer = [0; 49];
        self.emit(&mut buffer);
        buffer
    }
}

/// The user name without a `DOMAIN\` prefix (RFC 2759 §8.2).
pub fn strip_domain(user_name: &[u8]) -> &[u8] {
    match user_name.iter().rposition(|&b| b == b'\\') {
        Some(pos) => &user_name[pos + 1..],
        None => user_name,
    }
}

/// ChallengeHash (RFC 2759 §8.2): the first 8 octets of
/// SHA1(PeerChallenge || AuthenticatorChallenge || UserName), the user name without
/// its domain.
pub fn challenge_hash(
    peer_challenge: &[u8; 16],
    authenticator_challenge: &[u8; 16],
    user_name: &[u8],
) -> [u8; 8] {
    let mut sha = Sha1::new();
    sha.update(peer_challenge);
    sha.update(authenticator_challenge);
    sha.update(strip_domain(user_name));
    let digest = sha.finalize();
    let mut out = [0; 8];
    out.copy_from_slice(&digest[..8]);
    out
}

/// NtPasswordHash (RFC 2759 §8.3): MD4 over the UTF-16LE password.
pub fn nt_password_hash(password: &str) -> [u8; 16] {
    let mut md4 = Md4::new();
    for unit in password.encode_utf16() {
        md4.update(unit.to_le_bytes());
    }
    md4.finalize().into()
}

/// HashNtPasswordHash (RFC 2759 §8.4): MD4 over the password hash.
pub fn hash_nt_password_hash(password_hash: &[u8; 16]) -> [u8; 16] {
    Md4::digest(password_hash).into()
}

/// Expand 7 key octets to a DES key with odd parity in the low bit of every octet
/// (RFC 2759 §8.6, example in §9.3).
pub fn des_key(key: &[u8; 7]) -> [u8; 8] {
    let bits = key
        .iter()
        .fold(0u64, |acc, &byte| (acc << 8) | u64::from(byte));
    let mut out = [0u8; 8];
    for (i, octet) in out.iter_mut().enumerate() {
        let seven = ((bits >> (49 - 7 * i)) & 0x7F) as u8;
        let shifted = seven << 1;
        *octet = shifted | u8::from(shifted.count_ones() % 2 == 0);
    }
    out
}

fn des_encrypt(clear: &[u8; 8], key: &[u8; 7]) -> [u8; 8] {
    let cipher = Des::new(GenericArray::from_slice(&des_key(key)));
    let mut block = GenericArray::clone_from_slice(clear);
    cipher.encrypt_block(&mut block);
    block.into()
}

/// ChallengeResponse (RFC 2759 §8.5): the password hash, zero-padded to 21 octets,
/// split into three DES keys that each encrypt the 8-octet challenge.
pub fn challenge_response(challenge: &[u8; 8], password_hash: &[u8; 16]) -> [u8; 24] {
    let mut padded = [0u8; 21];
    padded[..16].copy_from_slice(password_hash);
    let mut out = [0u8; 24];
    for (i, chunk) in out.chunks_exact_mut(8).enumerate() {
        let mut key = [0u8; 7];
        key.copy_from_slice(&padded[7 * i..7 * i + 7]);
        chunk.copy_from_slice(&des_encrypt(challenge, &key));
    }
    out
}

/// GenerateNTResponse (RFC 2759 §8.1).
pub fn generate_nt_response(
    authenticator_challenge: &[u8; 16],
    peer_challenge: &[u8; 16],
    user_name: &[u8],
    password: &str,
) -> [u8; 24] {
    let challenge = challenge_hash(peer_challenge, authenticator_challenge, user_name);
    challenge_response(&challenge, &nt_password_hash(password))
}

const MAGIC1: &[u8; 39] = b"Magic server to client signing constant";
const MAGIC2: &[u8; 41] = b"Pad to make it do more than one iteration";

/// GenerateAuthenticatorResponse (RFC 2759 §8.7): `"S="` and 40 uppercase hex digits.
pub fn generate_authenticator_response(
    password: &str,
    nt_response: &[u8; 24],
    peer_challenge: &[u8; 16],
    authenticator_challenge: &[u8; 16],
    user_name: &[u8],
) -> String {
    let password_hash_hash = hash_nt_password_hash(&nt_password_hash(password));
    let mut sha = Sha1::new();
    sha.update(password_hash_hash);
    sha.update(nt_response);
    sha.update(MAGIC1);
    let digest = sha.finalize();
    let challenge = challenge_hash(peer_challenge, authenticator_challenge, user_name);
    let mut sha = Sha1::new();
    sha.update(digest);
    sha.update(challenge);
    sha.update(MAGIC2);
    let digest = sha.finalize();
    let mut out = String::with_capacity(42);
    out.push_str("S=");
    push_hex_upper(&mut out, &digest);
    out
}

fn push_hex_upper(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0F)]));
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The authenticator's verdict on a peer's Response (RFC 2759 §4, §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// The NT-Response matches: send a CHAP Success with this message,
    /// `"S=<auth_string> M=<text>"` (§5).
    Success { message: String },
    /// The NT-Response does not match: send a CHAP Failure, for example with
    /// [`FailureMessage::authentication_failure`] (§6).
    Failure,
}

/// Verify a peer's Response as the authenticator: recompute the NT-Response from the
/// password and compare (in constant time); on a match build the Success message
/// with `text` after `M=`.
pub fn verify_response(
    user_name: &[u8],
    password: &str,
    authenticator_challenge: &[u8; 16],
    response: &ResponseValue,
    text: &str,
) -> Verification {
    let expected = generate_nt_response(
        authenticator_challenge,
        &response.peer_challenge,
        user_name,
        password,
    );
    if !constant_time_eq(&expected, &response.nt_response) {
        return Verification::Failure;
    }
    let mut message = generate_authenticator_response(
        password,
        &response.nt_response,
        &response.peer_challenge,
        authenticator_challenge,
        user_name,
    );
    message.push_str(" M=");
    message.push_str(text);
    Verification::Success { message }
}

/// Check a Success message as the peer (RFC 2759 §8.8): it must start with the
/// expected `"S=<40 hex>"` (hex digits compared case-insensitively), followed by the
/// end of the message or a space.
pub fn check_success_message(
    password: &str,
    nt_response: &[u8; 24],
    peer_challenge: &[u8; 16],
    authenticator_challenge: &[u8; 16],
    user_name: &[u8],
    message: &[u8],
) -> bool {
    let expected = generate_authenticator_response(
        password,
        nt_response,
        peer_challenge,
        authenticator_challenge,
        user_name,
    );
    let Some(received) = message.get(..expected.len()) else {
        return false;
    };
    let terminated = matches!(message.get(expected.len()), None | Some(b' '));
    terminated && received.eq_ignore_ascii_case(expected.as_bytes())
}

/// MS-CHAPv2 error codes of the Failure message (RFC 2759 §6).
pub mod error_code {
    pub const RESTRICTED_LOGON_HOURS: u32 = 646;
    pub const ACCT_DISABLED: u32 = 647;
    pub const PASSWD_EXPIRED: u32 = 648;
    pub const NO_DIALIN_PERMISSION: u32 = 649;
    pub const AUTHENTICATION_FAILURE: u32 = 691;
    pub const CHANGING_PASSWORD: u32 = 709;
}

/// The Failure message (RFC 2759 §6):
/// `"E=<error> R=<0|1> C=<32 hex> V=<version> M=<text>"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureMessage {
    /// Decimal error code, see [`error_code`].
    pub error: u32,
    /// Whether the peer may retry.
    pub retry: bool,
    /// The new Authenticator Challenge for a retry.
    pub challenge: [u8; 16],
    /// Password-change protocol version; 3 for MS-CHAPv2.
    pub version: u32,
    /// Human-readable text (may be empty; `M=` is then still sent).
    pub text: String,
}

impl FailureMessage {
    /// Error 691, no retry, version 3 (what pppd and Windows send on a bad password).
    pub fn authentication_failure(challenge: [u8; 16], text: &str) -> FailureMessage {
        FailureMessage {
            error: error_code::AUTHENTICATION_FAILURE,
            retry: false,
            challenge,
            version: 3,
            text: text.to_owned(),
        }
    }

    /// Parse a Failure packet's Message. E, R, C and V are required (C with exactly
    /// 32 hex digits); `M=` is optional and takes the rest of the message.
    pub fn parse(message: &[u8]) -> Result<FailureMessage> {
        const WHAT: &str = "MS-CHAPv2 Failure message";
        let bad = Error::BadValue { what: WHAT };
        let message = core::str::from_utf8(message).map_err(|_| bad)?;
        let (fields, text) = match message.find("M=") {
            Some(pos) => (&message[..pos], &message[pos + 2..]),
            None => (message, ""),
        };
        let (mut error, mut retry, mut challenge, mut version) = (None, None, None, None);
        for token in fields.split(' ').filter(|t| !t.is_empty()) {
            let (key, value) = token.split_at_checked(2).ok_or(bad)?;
            match key {
                "E=" => error = Some(value.parse::<u32>().map_err(|_| bad)?),
                "R=" => {
                    retry = Some(match value {
                        "0" => false,
                        "1" => true,
                        _ => return Err(bad),
                    })
                }
                "C=" => {
                    let bytes = hex_decode_16(value).ok_or(bad)?;
                    challenge = Some(bytes);
                }
                "V=" => version = Some(value.parse::<u32>().map_err(|_| bad)?),
                _ => return Err(bad),
            }
        }
        Ok(FailureMessage {
            error: error.ok_or(bad)?,
            retry: retry.ok_or(bad)?,
            challenge: challenge.ok_or(bad)?,
            version: version.ok_or(bad)?,
            text: text.to_owned(),
        })
    }
}

fn hex_decode_16(text: &str) -> Option<[u8; 16]> {
    let digits = text.as_bytes();
    if digits.len() != 32 {
        return None;
    }
    let nibble = |c: u8| char::from(c).to_digit(16).map(|d| d as u8);
    let mut out = [0u8; 16];
    for (i, octet) in out.iter_mut().enumerate() {
        *octet = (nibble(digits[2 * i])? << 4) | nibble(digits[2 * i + 1])?;
    }
    Some(out)
}

impl fmt::Display for FailureMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut challenge = String::with_capacity(32);
        push_hex_upper(&mut challenge, &self.challenge);
        write!(
            f,
            "E={} R={} C={} V={} M={}",
            self.error,
            u8::from(self.retry),
            challenge,
            self.version,
            self.text
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use proptest::prelude::*;

    fn h<const N: usize>(text: &str) -> [u8; N] {
        hex::decode(text.replace(' ', ""))
            .unwrap()
            .try_into()
            .unwrap()
    }

    // RFC 2759 §9.2, every value.
    const USER: &[u8] = b"User";
    const PASSWORD: &str = "clientPass";

    fn auth_challenge() -> [u8; 16] {
        h("5B 5D 7C 7D 7B 3F 2F 3E 3C 2C 60 21 32 26 26 28")
    }

    fn peer_challenge() -> [u8; 16] {
        h("21 40 23 24 25 5E 26 2A 28 29 5F 2B 3A 33 7C 7E")
    }

    fn nt_response() -> [u8; 24] {
        h("82 30 9E CD 8D 70 8B 5E A0 8F AA 39 81 CD 83 54 42 33 11 4A 3D 85 D6 DF")
    }

    #[test]
    fn rfc2759_9_2_unicode_password() {
        let unicode: Vec<u8> = PASSWORD.encode_utf16().flat_map(u16::to_le_bytes).collect();
        assert_eq!(
            unicode,
            hex::decode("63006C00690065006E0074005000610073007300").unwrap()
        );
    }

    #[test]
    fn rfc2759_9_2_challenge_hash() {
        assert_eq!(
            challenge_hash(&peer_challenge(), &auth_challenge(), USER),
            h::<8>("D0 2E 43 86 BC E9 12 26")
        );
    }

    #[test]
    fn rfc2759_9_2_password_hash() {
        assert_eq!(
            nt_password_hash(PASSWORD),
            h::<16>("44 EB BA 8D 53 12 B8 D6 11 47 44 11 F5 69 89 AE")
        );
    }

    #[test]
    fn rfc2759_9_2_nt_response() {
        assert_eq!(
            challenge_response(
                &h("D0 2E 43 86 BC E9 12 26"),
                &h("44 EB BA 8D 53 12 B8 D6 11 47 44 11 F5 69 89 AE")
            ),
            nt_response()
        );
        assert_eq!(
            generate_nt_response(&auth_challenge(), &peer_challenge(), USER, PASSWORD),
            nt_response()
        );
    }

    #[test]
    fn rfc2759_9_2_password_hash_hash() {
        assert_eq!(
            hash_nt_password_hash(&nt_password_hash(PASSWORD)),
            h::<16>("41 C0 0C 58 4B D2 D9 1C 40 17 A2 A1 2F A5 9F 3F")
        );
    }

    #[test]
    fn rfc2759_9_2_authenticator_response() {
        assert_eq!(
            generate_authenticator_response(
                PASSWORD,
                &nt_response(),
                &peer_challenge(),
                &auth_challenge(),
                USER
            ),
            "S=407A5589115FD0D6209F510FE9C04566932CDA56"
        );
    }

    #[test]
    fn rfc2759_9_3_des_keys() {
        let hash = nt_password_hash("MyPw");
        assert_eq!(
            hash,
            h::<16>("FC 15 6A F7 ED CD 6C 0E DD E3 33 7D 42 7F 4E AC")
        );
        assert_eq!(
            des_key(&h("FC 15 6A F7 ED CD 6C")),
            h::<8>("FD 0B 5B 5E 7F 6E 34 D9")
        );
        assert_eq!(
            des_key(&h("0E DD E3 33 7D 42 7F")),
            h::<8>("0E 6E 79 67 37 EA 08 FE")
        );
    }

    #[test]
    fn domain_is_stripped() {
        assert_eq!(
            challenge_hash(&peer_challenge(), &auth_challenge(), b"CORP\\User"),
            challenge_hash(&peer_challenge(), &auth_challenge(), USER)
        );
        assert_eq!(strip_domain(b"a\\b\\c"), b"c");
        assert_eq!(strip_domain(b"plain"), b"plain");
    }

    fn rfc_response() -> ResponseValue {
        ResponseValue {
            peer_challenge: peer_challenge(),
            nt_response: nt_response(),
            flags: 0,
        }
    }

    #[test]
    fn verify_accepts_rfc_example() {
        let verdict = verify_response(
            USER,
            PASSWORD,
            &auth_challenge(),
            &rfc_response(),
            "Access granted",
        );
        assert_eq!(
            verdict,
            Verification::Success {
                message: "S=407A5589115FD0D6209F510FE9C04566932CDA56 M=Access granted".into()
            }
        );
        let Verification::Success { message } = verdict else {
            panic!()
        };
        assert!(check_success_message(
            PASSWORD,
            &nt_response(),
            &peer_challenge(),
            &auth_challenge(),
            USER,
            message.as_bytes()
        ));
        assert!(check_success_message(
            PASSWORD,
            &nt_response(),
            &peer_challenge(),
            &auth_challenge(),
            USER,
            b"S=407a5589115fd0d6209f510fe9c04566932cda56"
        ));
        assert!(!check_success_message(
            PASSWORD,
            &nt_response(),
            &peer_challenge(),
            &auth_challenge(),
            USER,
            b"S=407A5589115FD0D6209F510FE9C04566932CDA57 M=x"
        ));
        assert!(!check_success_message(
            PASSWORD,
            &nt_response(),
            &peer_challenge(),
            &auth_challenge(),
            USER,
            b"S=407A"
        ));
    }

    #[test]
    fn verify_rejects_wrong_password_and_tampering() {
        assert_eq!(
            verify_response(USER, "wrong", &auth_challenge(), &rfc_response(), ""),
            Verification::Failure
        );
        let mut tampered = rfc_response();
        tampered.nt_response[23] ^= 1;
        assert_eq!(
            verify_response(USER, PASSWORD, &auth_challenge(), &tampered, ""),
            Verification::Failure
        );
        assert_eq!(
            verify_response(b"Other", PASSWORD, &auth_challenge(), &rfc_response(), ""),
            Verification::Failure
        );
    }

    #[test]
    fn response_value_layout() {
        let bytes = rfc_response().to_bytes();
        assert_eq!(&bytes[..16], &peer_challenge());
        assert_eq!(&bytes[16..24], &[0; 8]);
        assert_eq!(&bytes[24..48], &nt_response());
        assert_eq!(bytes[48], 0);
        assert_eq!(ResponseValue::parse(&bytes).unwrap(), rfc_response());
        let mut reserved = bytes;
        reserved[20] = 0xFF;
        assert_eq!(ResponseValue::parse(&reserved).unwrap(), rfc_response());
        assert_eq!(
            ResponseValue::parse(&bytes[..48]),
            Err(Error::BadLength {
                what: "MS-CHAPv2 Response Value",
                value: 48
            })
        );
        assert_eq!(
            parse_challenge(&[0; 15]),
            Err(Error::BadLength {
                what: "MS-CHAPv2 Challenge Value",
                value: 15
            })
        );
        assert_eq!(
            parse_challenge(&auth_challenge()).unwrap(),
            auth_challenge()
        );
    }

    #[test]
    fn failure_message_format() {
        let failure = FailureMessage::authentication_failure(auth_challenge(), "bad password");
        let text = failure.to_string();
        assert_eq!(
            text,
            "E=691 R=0 C=5B5D7C7D7B3F2F3E3C2C602132262628 V=3 M=bad password"
        );
        assert_eq!(FailureMessage::parse(text.as_bytes()).unwrap(), failure);
        let lower =
            FailureMessage::parse(b"E=648 R=1 C=5b5d7c7d7b3f2f3e3c2c602132262628 V=3").unwrap();
        assert_eq!(lower.error, error_code::PASSWD_EXPIRED);
        assert!(lower.retry);
        assert_eq!(lower.text, "");
    }

    #[test]
    fn failure_message_errors() {
        let bad = Err(Error::BadValue {
            what: "MS-CHAPv2 Failure message",
        });
        for message in [
            &b"E=691 R=0 V=3 M=x"[..],
            b"E=691 R=2 C=5B5D7C7D7B3F2F3E3C2C602132262628 V=3",
            b"E=691 R=0 C=5B5D V=3",
            b"E=x R=0 C=5B5D7C7D7B3F2F3E3C2C602132262628 V=3",
            b"R=0 C=5B5D7C7D7B3F2F3E3C2C602132262628 V=3",
            b"E=691 R=0 C=5B5D7C7D7B3F2F3E3C2C602132262628",
            b"E=691 R=0 C=5B5D7C7D7B3F2F3E3C2C60213226262G V=3",
            b"E=691 Q=0 R=0 C=5B5D7C7D7B3F2F3E3C2C602132262628 V=3",
            b"\xFF",
        ] {
            assert_eq!(FailureMessage::parse(message), bad, "{message:?}");
        }
    }

    proptest! {
        #[test]
        fn response_value_roundtrip(peer_challenge in any::<[u8; 16]>(), nt in proptest::collection::vec(any::<u8>(), 24), flags in any::<u8>()) {
            let value = ResponseValue { peer_challenge, nt_response: nt.try_into().unwrap(), flags };
            prop_assert_eq!(ResponseValue::parse(&value.to_bytes()).unwrap(), value);
        }

        #[test]
        fn failure_message_roundtrip(error in any::<u32>(), retry in any::<bool>(), challenge in any::<[u8; 16]>(), version in any::<u32>(), text in "[ -~]{0,40}") {
            let failure = FailureMessage { error, retry, challenge, version, text };
            prop_assert_eq!(FailureMessage::parse(failure.to_string().as_bytes()).unwrap(), failure);
        }

        #[test]
        fn failure_message_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(failure) = FailureMessage::parse(&bytes) {
                prop_assert_eq!(FailureMessage::parse(failure.to_string().as_bytes()).unwrap(), failure);
            }
        }

        #[test]
        fn verify_roundtrip(user in "[a-zA-Z]{1,12}", password in "\\PC{0,16}", auth in any::<[u8; 16]>(), peer in any::<[u8; 16]>()) {
            let nt_response = generate_nt_response(&auth, &peer, user.as_bytes(), &password);
            let response = ResponseValue { peer_challenge: peer, nt_response, flags: 0 };
            let verdict = verify_response(user.as_bytes(), &password, &auth, &response, "ok");
            let Verification::Success { message } = verdict else { panic!("rejected") };
            prop_assert!(check_success_message(&password, &nt_response, &peer, &auth, user.as_bytes(), message.as_bytes()));
        }
    }
}
