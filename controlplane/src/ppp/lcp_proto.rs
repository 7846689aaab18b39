//! LCP option policy (RFC 1661 §6): [`Lcp`] implements [`Protocol`] for the generic
//! automaton [`Fsm`](super::fsm::Fsm), in either role; [`LcpPolicy`] says which.
//!
//! | option | our request | the peer's request |
//! |---|---|---|
//! | MRU (§6.1, [`mru`]) | [`LcpPolicy::mru`]; a Nak within bounds is followed | acked within `[peer_mru_min, peer_mru_max]`, else Nak'd with the bound |
//! | ACCM (RFC 1662 §7.1) | never sent | acked and recorded (L2TP frames are not HDLC-escaped; the value only goes to the LAC in SLI, RFC 2661 §4.4.6) |
//! | Authentication-Protocol (§6.2, [`auth`]) | authenticator: [`LcpPolicy::auth_require`], walked in order on Naks; failure when exhausted or rejected | acked when in [`LcpPolicy::auth_accept`], else Nak'd with its first entry; rejected when it is empty |
//! | Quality-Protocol (§6.3) | never sent | rejected |
//! | Magic-Number (§6.4, [`magic`]) | random from the seeded RNG when [`LcpPolicy::magic`] | acked, or Nak'd with a fresh number when equal to ours; loopback declared after [`LcpPolicy::max_loopback`] bounced Naks |
//! | PFC (§6.5), ACFC (§6.6) | when `request_pfc` / `request_acfc` | acked when `accept_pfc` / `accept_acfc`, else rejected |
//! | anything else, or a known option of the wrong size | never sent | rejected |
//!
//! What was agreed is kept in [`Negotiated`] (read it once the automaton is Opened). A policy
//! failure (no common authentication protocol, loopback) is reported by [`Failing::failure`];
//! the owner closes the automaton ([`super::policy::close_on_failure`], done by
//! [`super::lcp_link::LcpLink`]).

pub mod auth;
pub mod magic;
pub mod mru;

use rand::rngs::StdRng;

use super::fsm::{Options, Protocol, Verdict, code};
use super::lcp::{AuthProtocol, ChapAlgorithm, LcpOption};
use super::policy::{Failing, NegotiationFailure};
use super::wire::{self, ConfigOption};

use auth::{Ladder, PeerAuthVerdict};
use magic::Magic;

/// PPP protocol number of LCP.
pub const PROTOCOL_LCP: u16 = 0xc021;

/// The MRU we ask for by default: 1400 leaves room for the outer IP, UDP, L2TP and PPP
/// headers on a 1500-byte path (what xl2tpd/pppd use too).
pub const DEFAULT_OUR_MRU: u16 = 1400;

/// Smallest peer MRU accepted by default (pppd's `MINMRU`).
pub const DEFAULT_PEER_MRU_MIN: u16 = 128;

/// What we ask for and what we accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LcpPolicy {
    /// MRU to request; `None`: do not send the option (the peer assumes 1500).
    pub mru: Option<u16>,
    /// Smallest MRU accepted from the peer, and smallest Nak'd value we follow for ours.
    pub peer_mru_min: u16,
    /// Largest MRU accepted from the peer, and largest Nak'd value we follow for ours.
    pub peer_mru_max: u16,
    /// Authenticator: protocols we ask the peer to authenticate with, most preferred first.
    /// Empty: we do not ask (no authentication phase from us).
    pub auth_require: Vec<AuthProtocol>,
    /// Authenticatee: protocols we can authenticate ourselves with, most preferred first.
    /// Empty: the peer's Authentication-Protocol is rejected.
    pub auth_accept: Vec<AuthProtocol>,
    /// Send a Magic-Number (and detect loopback).
    pub magic: bool,
    /// Bounced Naks before the link is declared looped back (RFC 1661 §6.4); at most the
    /// automaton's Max-Failure (see [`magic::DEFAULT_MAX_LOOPBACK`]).
    pub max_loopback: u32,
    /// Request PFC: we can receive compressed Protocol fields (RFC 1661 §6.5).
    pub request_pfc: bool,
    /// Request ACFC: we can receive frames without Address and Control (RFC 1661 §6.6).
    pub request_acfc: bool,
    /// Ack the peer's PFC (else reject it).
    pub accept_pfc: bool,
    /// Ack the peer's ACFC (else reject it).
    pub accept_acfc: bool,
}

impl LcpPolicy {
    /// The LNS (authenticator) side: asks for `auth_require` in order, authenticates itself
    /// to nobody, accepts PFC and ACFC (harmless over L2TP) but does not request them.
    pub fn authenticator(auth_require: Vec<AuthProtocol>) -> LcpPolicy {
        LcpPolicy {
            mru: Some(DEFAULT_OUR_MRU),
            peer_mru_min: DEFAULT_PEER_MRU_MIN,
            peer_mru_max: mru::DEFAULT_MRU,
            auth_require,
            auth_accept: Vec::new(),
            magic: true,
            max_loopback: magic::DEFAULT_MAX_LOOPBACK,
            request_pfc: false,
            request_acfc: false,
            accept_pfc: true,
            accept_acfc: true,
        }
    }

    /// The client (authenticatee) side, as the LAC emulator runs it: asks for no
    /// authentication, accepts the protocols of `auth_accept`.
    pub fn peer(auth_accept: Vec<AuthProtocol>) -> LcpPolicy {
        LcpPolicy {
            auth_require: Vec::new(),
            auth_accept,
            ..LcpPolicy::authenticator(Vec::new())
        }
    }

    /// Every authentication protocol xlns implements, strongest first: MS-CHAPv2, CHAP-MD5,
    /// PAP.
    pub fn all_auth() -> Vec<AuthProtocol> {
        vec![
            AuthProtocol::Chap(ChapAlgorithm::MsChapV2),
            AuthProtocol::Chap(ChapAlgorithm::Md5),
            AuthProtocol::Pap,
        ]
    }
}

/// What LCP agreed, in both directions. Fields stay at their defaults (RFC 1661 §6) for
/// options not negotiated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// The peer's MRU: the largest packet we may send (from the peer's request; 1500 default).
    pub peer_mru: u16,
    /// Our MRU as the peer acknowledged it (1500 default).
    pub our_mru: u16,
    /// The peer's ACCM (recorded for the SLI message; 0xffffffff default, RFC 1662 §7.1).
    pub peer_accm: u32,
    /// The protocol the peer authenticates with, to us (we asked, it acked).
    pub peer_auth: Option<AuthProtocol>,
    /// The protocol we authenticate with, to the peer (it asked, we acked).
    pub our_auth: Option<AuthProtocol>,
    /// Our Magic-Number as acked (0: not negotiated).
    pub our_magic: u32,
    /// The peer's Magic-Number (0: not negotiated).
    pub peer_magic: u32,
    /// We may compress the Protocol field of what we send (the peer requested PFC, we acked).
    pub tx_pfc: bool,
    /// The peer may compress the Protocol field of what it sends (we requested PFC, it acked).
    pub rx_pfc: bool,
    /// We may omit Address and Control in what we send (the peer requested ACFC, we acked).
    pub tx_acfc: bool,
    /// The peer may omit Address and Control (we requested ACFC, it acked).
    pub rx_acfc: bool,
}

impl Default for Negotiated {
    fn default() -> Self {
        Negotiated {
            peer_mru: mru::DEFAULT_MRU,
            our_mru: mru::DEFAULT_MRU,
            peer_accm: 0xffff_ffff,
            peer_auth: None,
            our_auth: None,
            our_magic: 0,
            peer_magic: 0,
            tx_pfc: false,
            rx_pfc: false,
            tx_acfc: false,
            rx_acfc: false,
        }
    }
}

/// LCP's option state for one link: policy, request in progress, result.
#[derive(Debug, Clone)]
pub struct Lcp {
    policy: LcpPolicy,
    /// MRU of our next request (`None`: not sent, e.g. after a Reject).
    mru: Option<u16>,
    ladder: Ladder,
    send_auth: bool,
    magic: Magic,
    send_pfc: bool,
    send_acfc: bool,
    negotiated: Negotiated,
}

impl Lcp {
    /// LCP with `policy`; `rng` draws the Magic-Numbers (seed it from a good source of
    /// uniqueness, RFC 1661 §6.4; tests seed it with a constant).
    pub fn new(policy: LcpPolicy, rng: StdRng) -> Lcp {
        let mut lcp = Lcp {
            mru: policy.mru,
            ladder: Ladder::default(),
            send_auth: !policy.auth_require.is_empty(),
            magic: Magic::new(rng),
            send_pfc: policy.request_pfc,
            send_acfc: policy.request_acfc,
            negotiated: Negotiated::default(),
            policy,
        };
        lcp.ladder.reset(&lcp.policy.auth_require);
        lcp
    }

    /// The policy.
    pub fn policy(&self) -> &LcpPolicy {
        &self.policy
    }

    /// What was agreed (meaningful once the automaton is Opened).
    pub fn negotiated(&self) -> &Negotiated {
        &self.negotiated
    }

    /// The authentication protocol of our next (or last) Configure-Request.
    pub fn requested_auth(&self) -> Option<&AuthProtocol> {
        if self.send_auth {
            self.ladder.requested(&self.policy.auth_require)
        } else {
            None
        }
    }

    /// Takes `negotiated` as the agreed state without a negotiation (proxy LCP, RFC 2661
    /// §4.4.5: the values the LAC and the peer agreed; our Magic-Number becomes the LAC's,
    /// which the peer knows). Use with [`Fsm::force_opened`](super::fsm::Fsm::force_opened);
    /// a later renegotiation starts from the policy again.
    pub fn assume_negotiated(&mut self, negotiated: Negotiated) {
        self.negotiated = negotiated;
    }

    /// How many of our Naks came back unchanged (RFC 1661 §6.4 loopback suspicion).
    pub fn loopback_count(&self) -> u32 {
        self.magic.loops()
    }
}

/// Appends one typed option to `out`.
pub(crate) fn push<O: ConfigOption>(out: &mut Vec<u8>, option: &O) {
    let start = out.len();
    out.resize(start + option.buffer_len(), 0);
    if let Some(buffer) = out.get_mut(start..) {
        option.emit(buffer);
    }
}

/// Decodes one raw option of the automaton with the LCP codec.
fn parse(raw: &super::fsm::RawOption<'_>) -> Option<LcpOption> {
    LcpOption::parse(wire::RawOption {
        kind: raw.kind,
        data: raw.data,
    })
    .ok()
}

impl Failing for Lcp {
    fn failure(&self) -> Option<NegotiationFailure> {
        if self.magic.looped() {
            Some(NegotiationFailure::Loopback)
        } else {
            self.ladder.failure()
        }
    }
}

impl Protocol for Lcp {
    const PROTOCOL: u16 = PROTOCOL_LCP;

    /// LCP interprets codes 1 to 11 (RFC 1661 §5).
    fn knows_code(&self, c: u8) -> bool {
        (code::CONFIGURE_REQUEST..=code::DISCARD_REQUEST).contains(&c)
    }

    /// A Code-Reject of Echo or Discard is permitted (RXJ+, RFC 1661 §4.3: "Echo-Request ...
    /// Code-Reject ... permitted"); of codes 1 to 8 it is catastrophic.
    fn code_reject_is_catastrophic(&self, c: u8) -> bool {
        (code::CONFIGURE_REQUEST..=code::PROTOCOL_REJECT).contains(&c)
    }

    fn magic_number(&self) -> u32 {
        self.negotiated.our_magic
    }

    fn reset_request(&mut self) {
        self.mru = self.policy.mru;
        self.ladder.reset(&self.policy.auth_require);
        self.send_auth = !self.policy.auth_require.is_empty();
        self.magic.reset(self.policy.magic);
        self.send_pfc = self.policy.request_pfc;
        self.send_acfc = self.policy.request_acfc;
        let peer = self.negotiated.clone();
        // Our side starts over; the peer's side is rewritten by its next acked request.
        self.negotiated = Negotiated {
            peer_mru: peer.peer_mru,
            peer_accm: peer.peer_accm,
            our_auth: peer.our_auth,
            peer_magic: peer.peer_magic,
            tx_pfc: peer.tx_pfc,
            tx_acfc: peer.tx_acfc,
            ..Negotiated::default()
        };
    }

    fn build_request(&mut self, out: &mut Vec<u8>) {
        if let Some(mru) = self.mru {
            push(out, &LcpOption::Mru(mru));
        }
        if let Some(auth) = self.requested_auth() {
            push(out, &LcpOption::AuthenticationProtocol(auth.clone()));
        }
        if self.magic.ours() != 0 {
            push(out, &LcpOption::MagicNumber(self.magic.ours()));
        }
        if self.send_pfc {
            push(out, &LcpOption::Pfc);
        }
        if self.send_acfc {
            push(out, &LcpOption::Acfc);
        }
    }

    fn judge_peer_request(&mut self, options: Options<'_>) -> Verdict {
        let mut nak = Vec::new();
        let mut reject = Vec::new();
        let mut nak_magic = None;
        for raw in options {
            let Some(option) = parse(&raw) else {
                // A known option of the wrong size cannot be understood: reject it (§5.4).
                reject.extend_from_slice(raw.bytes);
                continue;
            };
            match option {
                LcpOption::Mru(value) => {
                    let p = &self.policy;
                    if let Err(bound) = mru::judge_peer(value, p.peer_mru_min, p.peer_mru_max) {
                        push(&mut nak, &LcpOption::Mru(bound));
                    }
                }
                LcpOption::Accm(_) => {}
                LcpOption::AuthenticationProtocol(asked) => {
                    match auth::judge_peer(&self.policy.auth_accept, &asked) {
                        PeerAuthVerdict::Accept => {}
                        PeerAuthVerdict::Nak(preferred) => {
                            push(&mut nak, &LcpOption::AuthenticationProtocol(preferred));
                        }
                        PeerAuthVerdict::Reject => reject.extend_from_slice(raw.bytes),
                    }
                }
                LcpOption::MagicNumber(peer) => {
                    if let Some(suggested) = self.magic.judge_peer(peer) {
                        nak_magic = Some(suggested);
                        push(&mut nak, &LcpOption::MagicNumber(suggested));
                    }
                }
                LcpOption::Pfc if self.policy.accept_pfc => {}
                LcpOption::Acfc if self.policy.accept_acfc => {}
                LcpOption::Pfc
                | LcpOption::Acfc
                | LcpOption::QualityProtocol { .. }
                | LcpOption::Unknown { .. } => reject.extend_from_slice(raw.bytes),
            }
        }
        if !reject.is_empty() {
            Verdict::Reject(reject)
        } else if !nak.is_empty() {
            if let Some(value) = nak_magic {
                self.magic.nak_sent(value);
            }
            Verdict::Nak(nak)
        } else {
            Verdict::Ack
        }
    }

    fn peer_request_acked(&mut self, options: Options<'_>) {
        let n = &mut self.negotiated;
        n.peer_mru = mru::DEFAULT_MRU;
        n.peer_accm = 0xffff_ffff;
        n.our_auth = None;
        n.peer_magic = 0;
        n.tx_pfc = false;
        n.tx_acfc = false;
        for option in options.iter().filter_map(|raw| parse(&raw)) {
            match option {
                LcpOption::Mru(v) => n.peer_mru = v,
                LcpOption::Accm(v) => n.peer_accm = v,
                LcpOption::AuthenticationProtocol(a) => n.our_auth = Some(a),
                LcpOption::MagicNumber(m) => n.peer_magic = m,
                LcpOption::Pfc => n.tx_pfc = true,
                LcpOption::Acfc => n.tx_acfc = true,
                LcpOption::QualityProtocol { .. } | LcpOption::Unknown { .. } => {}
            }
        }
    }

    fn our_request_acked(&mut self, options: Options<'_>) {
        let n = &mut self.negotiated;
        n.our_mru = mru::DEFAULT_MRU;
        n.peer_auth = None;
        n.our_magic = 0;
        n.rx_pfc = false;
        n.rx_acfc = false;
        for option in options.iter().filter_map(|raw| parse(&raw)) {
            match option {
                LcpOption::Mru(v) => n.our_mru = v,
                LcpOption::AuthenticationProtocol(a) => n.peer_auth = Some(a),
                LcpOption::MagicNumber(m) => n.our_magic = m,
                LcpOption::Pfc => n.rx_pfc = true,
                LcpOption::Acfc => n.rx_acfc = true,
                LcpOption::Accm(_)
                | LcpOption::QualityProtocol { .. }
                | LcpOption::Unknown { .. } => {}
            }
        }
    }

    fn our_request_naked(&mut self, options: Options<'_>) -> bool {
        for raw in options {
            let parsed = parse(&raw);
            let auth = &self.policy.auth_require;
            match (raw.kind, parsed) {
                (_, Some(LcpOption::Mru(v))) => {
                    if let Some(current) = self.mru {
                        let (min, max) = (self.policy.peer_mru_min, self.policy.peer_mru_max);
                        self.mru = Some(mru::after_nak(current, v, min, max));
                    }
                }
                (_, Some(LcpOption::AuthenticationProtocol(suggested))) if self.send_auth => {
                    self.ladder.naked(auth, Some(&suggested));
                }
                (super::lcp::option_type::AUTHENTICATION_PROTOCOL, None) if self.send_auth => {
                    self.ladder.naked(auth, None);
                }
                (_, Some(LcpOption::MagicNumber(m))) if self.magic.ours() != 0 => {
                    self.magic.naked(m, self.policy.max_loopback);
                }
                // PFC and ACFC carry no value to change; options we did not send (the peer
                // wants us to add them) are not ones we are willing to request (§5.3 allows
                // ignoring them).
                _ => {}
            }
        }
        true
    }

    fn our_request_rejected(&mut self, options: Options<'_>) -> bool {
        use super::lcp::option_type::*;
        for raw in options {
            match raw.kind {
                MRU => self.mru = None,
                AUTHENTICATION_PROTOCOL => self.ladder.rejected(&self.policy.auth_require),
                MAGIC_NUMBER => self.magic.rejected(),
                PFC => self.send_pfc = false,
                ACFC => self.send_acfc = false,
                _ => return false,
            }
        }
        true
    }
}

#[cfg(test)]
mod tests;
