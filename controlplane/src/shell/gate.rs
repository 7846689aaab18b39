//! The xlnsd [`Gatekeeper`]: per-LAC policy ([`PolicyTable`]) and admission control
//! ([`Admission`]) decide which tunnels and sessions the endpoint may set up, and keep the
//! per-LAC counters balanced as they close.
//!
//! Bookkeeping rules (every admitted tunnel and session ends with exactly one
//! `*_closed` call from the endpoint):
//! * a tunnel counts against its LAC policy from admission until `tunnel_closed`; it is
//!   "in setup" for admission control until it comes up (`TunnelUp`) or closes;
//! * a session likewise, with `SessionUp` ending its setup.

use std::collections::HashMap;
use std::time::Instant;

use tracing::{info, warn};

use crate::admission::{Admission, Decision};
use crate::config::Config;
use crate::l2tp::endpoint::{
    Gatekeeper, SessionDecision, SessionKey, TunnelDecision, TunnelId, TunnelParams, TunnelRequest,
};
use crate::policy::{PolicyId, PolicyTable, ResultCode};
use crate::ppp::session::proxy::ProxyMode;

/// What the gate remembers of an admitted tunnel.
#[derive(Debug, Clone, Copy)]
struct TunnelEntry {
    policy: PolicyId,
    up: bool,
}

/// Counters of the gate's decisions, for logs and metrics.
#[derive(Debug, Clone, Default)]
pub struct GateStats {
    /// SCCRQs admitted.
    pub tunnels_admitted: u64,
    /// SCCRQs refused by policy (unknown LAC, `accept = false`, limits).
    pub tunnels_refused_policy: u64,
    /// SCCRQs refused by admission control (rate, setups in flight).
    pub tunnels_refused_admission: u64,
    /// ICRQs admitted.
    pub sessions_admitted: u64,
    /// ICRQs refused by policy limits.
    pub sessions_refused_policy: u64,
    /// ICRQs refused by admission control.
    pub sessions_refused_admission: u64,
    /// Close notifications for tunnels or sessions the gate did not know (a bug if not 0).
    pub unknown_closes: u64,
}

/// Policy and admission behind the endpoint's [`Gatekeeper`] callbacks.
#[derive(Debug)]
pub struct Gate {
    policies: PolicyTable,
    admission: Admission,
    tunnels: HashMap<TunnelId, TunnelEntry>,
    /// Sessions that were admitted and are not closed, with their LAC policy; `true` once
    /// up.
    sessions: HashMap<SessionKey, (PolicyId, bool)>,
    stats: GateStats,
}

fn refuse(code: ResultCode, message: &'static str) -> (u16, u16, &'static str) {
    (code.result, code.error.unwrap_or(0), message)
}

impl Gate {
    /// A gate for `config`'s `[[lac]]` policies and `[admission]` limits.
    pub fn new(config: &Config) -> Gate {
        Gate {
            policies: PolicyTable::new(config),
            admission: Admission::new(&config.admission),
            tunnels: HashMap::new(),
            sessions: HashMap::new(),
            stats: GateStats::default(),
        }
    }

    /// The policy table (counters per LAC).
    pub fn policies(&self) -> &PolicyTable {
        &self.policies
    }

    /// Admission control state.
    pub fn admission(&self) -> &Admission {
        &self.admission
    }

    /// Decision counters.
    pub fn stats(&self) -> &GateStats {
        &self.stats
    }

    /// The tunnel came up (SCCCN accepted): its setup is over.
    pub fn tunnel_up(&mut self, tunnel: TunnelId) {
        if let Some(entry) = self.tunnels.get_mut(&tunnel)
            && !entry.up
        {
            entry.up = true;
            let _ = self.admission.end_tunnel_setup();
        }
    }

    /// The session came up (ICCN accepted): its setup is over.
    pub fn session_up(&mut self, key: SessionKey) {
        if let Some((_, up)) = self.sessions.get_mut(&key)
            && !*up
        {
            *up = true;
            let _ = self.admission.end_session_setup();
        }
    }

    /// The proxy policy of the LAC that carries `key` (RFC 2661 §4.4.5); the default
    /// policy's for a session the gate does not know.
    pub fn proxy_mode(&self, key: SessionKey) -> ProxyMode {
        let policy = match self.sessions.get(&key) {
            Some((id, _)) => self.policies.get(*id),
            None => None,
        };
        policy
            .unwrap_or_else(|| self.policies.default_policy())
            .proxy_mode()
    }

    /// The name of the LAC policy that admitted `tunnel` (metrics, xlnsctl).
    pub fn tunnel_policy(&self, tunnel: TunnelId) -> Option<&str> {
        let id = self.policy_of(tunnel)?;
        self.policies.get(id).map(|p| p.name())
    }

    /// The `[[lac]]` name of session `key`'s tunnel (`None`: the default policy or an
    /// unknown session).
    pub fn lac_name(&self, key: SessionKey) -> Option<&str> {
        let (id, _) = self.sessions.get(&key)?;
        let policy = self.policies.get(*id)?;
        (!policy.is_default()).then(|| policy.name())
    }

    /// Applies the `[[lac]]` policies and `[admission]` limits of `config` (SIGHUP) to the
    /// next tunnels and sessions; live ones keep their parameters and stay counted
    /// ([`PolicyTable::reload`]).
    pub fn reload(&mut self, config: &Config) {
        let (policies, remap) = self.policies.reload(config);
        for entry in self.tunnels.values_mut() {
            entry.policy = remap.map(entry.policy);
        }
        for (policy, _) in self.sessions.values_mut() {
            *policy = remap.map(*policy);
        }
        self.policies = policies;
        self.admission.reconfigure(&config.admission);
    }

    fn policy_of(&self, tunnel: TunnelId) -> Option<PolicyId> {
        self.tunnels.get(&tunnel).map(|e| e.policy)
    }
}

impl Gatekeeper for Gate {
    fn admit_tunnel(&mut self, now: Instant, req: &TunnelRequest<'_>) -> TunnelDecision {
        let host = String::from_utf8_lossy(req.host_name);
        let id = self.policies.resolve(req.host_name, req.peer.ip());
        let Some(policy) = self.policies.get(id) else {
            self.stats.tunnels_refused_policy += 1;
            let (result, error, message) = refuse(ResultCode::NOT_AUTHORIZED, "no policy");
            return TunnelDecision::Reject {
                result,
                error,
                message,
            };
        };
        if let Err(refusal) = self.policies.check_tunnel(id) {
            self.stats.tunnels_refused_policy += 1;
            warn!(peer = %req.peer, host_name = %host, policy = policy.name(), %refusal, "tunnel refused");
            let (result, error, message) = refuse(refusal.result_code(), "refused by policy");
            return TunnelDecision::Reject {
                result,
                error,
                message,
            };
        }
        let params = TunnelParams {
            secret: policy.secret().map(|s| s.as_bytes().to_vec()),
            hide_avps: policy.hide_avps(),
            hello_interval: policy.hello_interval(),
            receive_window: policy.receive_window(),
            max_sessions: policy
                .max_sessions_per_tunnel()
                .map_or(u16::MAX, |m| m.min(u32::from(u16::MAX)) as u16),
        };
        let policy_name = policy.name().to_owned();
        let decision = self.admission.begin_tunnel_setup(now);
        if let Some(code) = decision.tunnel_result_code() {
            self.stats.tunnels_refused_admission += 1;
            warn!(peer = %req.peer, host_name = %host, ?decision, "tunnel refused by admission control");
            let (result, error, message) = refuse(code, "too many tunnel setups");
            return TunnelDecision::Reject {
                result,
                error,
                message,
            };
        }
        debug_assert!(matches!(decision, Decision::Admit));
        self.policies.tunnel_opened(id);
        self.tunnels.insert(
            req.tunnel,
            TunnelEntry {
                policy: id,
                up: false,
            },
        );
        self.stats.tunnels_admitted += 1;
        info!(tunnel = req.tunnel, peer = %req.peer, host_name = %host, policy = %policy_name, "tunnel admitted");
        TunnelDecision::Accept(params)
    }

    fn admit_session(
        &mut self,
        now: Instant,
        key: SessionKey,
        tunnel_sessions: usize,
    ) -> SessionDecision {
        let tunnel = key.tunnel;
        let Some(id) = self.policy_of(tunnel) else {
            self.stats.sessions_refused_policy += 1;
            let (result, error, message) =
                refuse(ResultCode::SESSION_NO_RESOURCES, "tunnel not admitted");
            return SessionDecision::Reject {
                result,
                error,
                message,
            };
        };
        let count = u32::try_from(tunnel_sessions).unwrap_or(u32::MAX);
        if let Err(refusal) = self.policies.check_session(id, count) {
            self.stats.sessions_refused_policy += 1;
            warn!(tunnel, %refusal, "session refused");
            let (result, error, message) = refuse(refusal.result_code(), "session limit");
            return SessionDecision::Reject {
                result,
                error,
                message,
            };
        }
        let decision = self.admission.begin_session_setup(now);
        if let Some(code) = decision.session_result_code() {
            self.stats.sessions_refused_admission += 1;
            warn!(tunnel, ?decision, "session refused by admission control");
            let (result, error, message) = refuse(code, "too many session setups");
            return SessionDecision::Reject {
                result,
                error,
                message,
            };
        }
        self.policies.session_opened(id);
        self.sessions.insert(key, (id, false));
        self.stats.sessions_admitted += 1;
        SessionDecision::Accept
    }

    fn tunnel_closed(&mut self, tunnel: TunnelId) {
        match self.tunnels.remove(&tunnel) {
            Some(entry) => {
                if !entry.up {
                    let _ = self.admission.end_tunnel_setup();
                }
                let _ = self.policies.tunnel_closed(entry.policy);
            }
            None => self.stats.unknown_closes += 1,
        }
    }

    fn session_closed(&mut self, key: SessionKey) {
        let Some((policy, up)) = self.sessions.remove(&key) else {
            self.stats.unknown_closes += 1;
            return;
        };
        if !up {
            let _ = self.admission.end_session_setup();
        }
        let _ = self.policies.session_closed(policy);
    }
}
