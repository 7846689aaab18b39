//! Per-realm AAA choice (issue #7): `[[realm]]` entries pick, from the realm of the name
//! a subscriber authenticates with, whether the local users file or RADIUS verifies it,
//! and whether the realm is stripped from the name first.
//!
//! # Contract
//!
//! * The realm of a user name is what follows its last `@` (`alice@isp.example` ->
//!   `isp.example`; the NAI form of RFC 7542 §2.1, where the realm is the part after the
//!   `@`). A name without `@`, or ending in `@`, has no realm. Realms compare ASCII
//!   case-insensitively (they are DNS names, RFC 7542 §2.2).
//! * [`Realms::choose`] returns the [`AaaMode`] and the name to verify: a matching
//!   `[[realm]]` with `aaa` wins over the LAC's `aaa` and `[radius] auth` (the realm is
//!   the more specific choice: the subscriber's home); without `aaa` the entry only
//!   strips. No matching entry: the caller's mode, the name unchanged.
//! * `strip = true` removes `@realm` from the name that is looked up in the users file or
//!   sent as User-Name (RFC 2865 §5.1), and that accounting reports, for PAP and CHAP-MD5.
//!   MS-CHAPv2 names are never stripped: the peer's challenge hash covers the user name
//!   as it presented it (RFC 2759 §8.2), so a verifier must see that very name.

use crate::config::AaaMode;
use crate::ppp::auth::{Credential, VerifyRequest};

/// One `[[realm]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealmConfig {
    /// `name`: the realm, without `@` (matched case-insensitively).
    pub name: String,
    /// `aaa`: `"local"` or `"radius"`; `None`: the LAC's or `[radius] auth`'s choice.
    pub aaa: Option<AaaMode>,
    /// `strip`: remove `@realm` from the name before it is verified. Default `false`.
    pub strip: bool,
}

/// The realm of `user`: the octets after its last `@`, if any.
pub fn realm_of(user: &[u8]) -> Option<&[u8]> {
    let at = user.iter().rposition(|b| *b == b'@')?;
    let realm = &user[at + 1..];
    (!realm.is_empty()).then_some(realm)
}

/// `user` without its `@realm` suffix.
pub fn strip_realm(user: &[u8]) -> &[u8] {
    match user.iter().rposition(|b| *b == b'@') {
        Some(at) if at + 1 < user.len() => &user[..at],
        _ => user,
    }
}

/// The `[[realm]]` entries of the configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Realms {
    entries: Vec<RealmConfig>,
}

impl Realms {
    pub fn new(entries: &[RealmConfig]) -> Realms {
        Realms {
            entries: entries.to_vec(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry for `user`'s realm.
    pub fn find(&self, user: &[u8]) -> Option<&RealmConfig> {
        let realm = realm_of(user)?;
        self.entries
            .iter()
            .find(|e| e.name.as_bytes().eq_ignore_ascii_case(realm))
    }

    /// How `request` is verified when the session's own choice (LAC, `[radius] auth`) is
    /// `default`, and the name to verify (`None`: the request's name, unchanged).
    pub fn choose(&self, request: &VerifyRequest, default: AaaMode) -> (AaaMode, Option<Vec<u8>>) {
        let Some(entry) = self.find(&request.user) else {
            return (default, None);
        };
        let mode = entry.aaa.unwrap_or(default);
        // RFC 2759 §8.2: the MS-CHAPv2 challenge hash covers the name as presented.
        let strippable = !matches!(request.credential, Credential::MsChapV2 { .. });
        let name = (entry.strip && strippable).then(|| strip_realm(&request.user).to_vec());
        (mode, name)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use crate::ppp::mschapv2::ResponseValue;

    fn realms() -> Realms {
        Realms::new(&[
            RealmConfig {
                name: "isp.example".into(),
                aaa: Some(AaaMode::Radius),
                strip: true,
            },
            RealmConfig {
                name: "corp.example".into(),
                aaa: Some(AaaMode::Local),
                strip: false,
            },
            RealmConfig {
                name: "strip.example".into(),
                aaa: None,
                strip: true,
            },
        ])
    }

    fn pap(user: &str) -> VerifyRequest {
        VerifyRequest {
            id: 1,
            user: user.as_bytes().to_vec(),
            credential: Credential::Pap {
                password: b"pw".to_vec(),
            },
        }
    }

    #[test]
    fn realm_is_after_the_last_at() {
        assert_eq!(realm_of(b"alice@isp.example"), Some(&b"isp.example"[..]));
        assert_eq!(realm_of(b"a@b@isp.example"), Some(&b"isp.example"[..]));
        assert_eq!(realm_of(b"alice"), None);
        assert_eq!(realm_of(b"alice@"), None);
        assert_eq!(realm_of(b""), None);
        assert_eq!(strip_realm(b"a@b@isp.example"), b"a@b");
        assert_eq!(strip_realm(b"alice@"), b"alice@");
        assert_eq!(strip_realm(b"alice"), b"alice");
    }

    #[test]
    fn a_matching_realm_chooses_the_mode_and_strips() {
        let r = realms();
        assert_eq!(
            r.choose(&pap("alice@isp.example"), AaaMode::Local),
            (AaaMode::Radius, Some(b"alice".to_vec()))
        );
        // Case-insensitive (RFC 7542 §2.2).
        assert_eq!(
            r.choose(&pap("alice@ISP.Example"), AaaMode::Local).0,
            AaaMode::Radius
        );
        assert_eq!(
            r.choose(&pap("bob@corp.example"), AaaMode::Radius),
            (AaaMode::Local, None)
        );
        // No aaa: the default stays, the name is stripped.
        assert_eq!(
            r.choose(&pap("carol@strip.example"), AaaMode::Radius),
            (AaaMode::Radius, Some(b"carol".to_vec()))
        );
        // No realm or an unknown one: unchanged.
        assert_eq!(
            r.choose(&pap("dave"), AaaMode::Local),
            (AaaMode::Local, None)
        );
        assert_eq!(
            r.choose(&pap("dave@other.example"), AaaMode::Radius),
            (AaaMode::Radius, None)
        );
        // A realm that only ends like a configured one does not match.
        assert_eq!(
            r.choose(&pap("eve@xisp.example"), AaaMode::Local),
            (AaaMode::Local, None)
        );
    }

    #[test]
    fn ms_chap_v2_names_are_never_stripped() {
        let request = VerifyRequest {
            id: 1,
            user: b"alice@isp.example".to_vec(),
            credential: Credential::MsChapV2 {
                identifier: 1,
                authenticator_challenge: [0; 16],
                response: ResponseValue {
                    peer_challenge: [0; 16],
                    nt_response: [0; 24],
                    flags: 0,
                },
            },
        };
        assert_eq!(
            realms().choose(&request, AaaMode::Local),
            (AaaMode::Radius, None)
        );
    }
}
