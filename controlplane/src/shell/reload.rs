//! Configuration reload (SIGHUP, `xlnsctl reload`; issue #8).
//!
//! # Contract
//!
//! [`Shell::reload`] re-reads the configuration file the daemon was started with, and the
//! users file it names, and either applies all of it or none of it:
//!
//! * A file that does not parse or validate, an unreadable users file or pools that do not
//!   build: the reload is refused, the error is logged as `xlnsd --check-config` would
//!   print it (`file:line:column: key: message`), the running configuration stays, and
//!   `xlns_config_reloads_total{result="failed"}` counts it.
//! * Otherwise the new configuration applies to what starts from now on, and no live
//!   tunnel or session is touched:
//!   * `[[lac]]` policies (added, removed, changed: secrets, limits, proxy modes, `aaa`)
//!     and `[admission]` ([`super::gate::Gate::reload`]): a removed LAC's live tunnels
//!     stay up and counted until they close;
//!   * `[ppp]` (except `gateway`), `[users]` (the file is re-read), `[[pool]]` (added
//!     pools, grown ranges; a removed or shrunk pool's leases stay valid until their
//!     sessions end: [`crate::ppp::pool::Pools::reload`]);
//!   * `[radius]` servers, timers, NAS attributes and default `auth`
//!     ([`super::aaa::Aaa::reconfigure`]); a `[radius]` added at runtime starts a client;
//!   * `[l2tp] accept_unknown_lacs` and `max_sessions`.
//! * Keys that only take effect at start ([`RESTART_ONLY`]: the listen address and the
//!   other `[l2tp]` timers, `[ppp] gateway`, `[dataplane]`, `[management]`, the RADIUS
//!   spool) keep their running values; each one that changed is named in a warning.
//!
//! Reloads are counted in `xlns_config_reloads_total{result="ok"|"failed"}`.

use std::path::PathBuf;

use tracing::{error, info, warn};

use super::Shell;
use super::aaa::Aaa;
use crate::config::{Config, ConfigError};
use crate::ppp::users::Users;

/// Keys a reload does not apply (they are read at start only).
pub const RESTART_ONLY: &[&str] = &[
    "l2tp.listen",
    "l2tp.host_name",
    "l2tp.receive_window",
    "l2tp.hello_interval",
    "l2tp.retransmit_initial",
    "l2tp.retransmit_cap",
    "l2tp.retransmit_max_retries",
    "l2tp.stopccn_wait",
    "l2tp.half_open_timeout",
    "l2tp.max_tunnels",
    "ppp.gateway",
    "dataplane",
    "management.metrics",
    "management.socket",
    "radius.spool",
    "radius.spool_max_records",
    "radius.spool_max_bytes",
    "radius.acct_server",
    "radius.interim_interval",
];

/// Adjusts a freshly loaded configuration the way the command line adjusted the first
/// one (`xlnsd --listen` overrides `[l2tp] listen`), so that a reload compares like with
/// like.
pub type Adjust = Box<dyn Fn(&mut Config) + Send>;

/// Counters of reloads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReloadStats {
    /// Reloads applied.
    pub ok: u64,
    /// Reloads refused (the running configuration stayed).
    pub failed: u64,
}

/// What [`Shell::reload`] did.
#[derive(Debug)]
pub enum ReloadOutcome {
    /// Applied; the restart-only keys that changed and were not applied.
    Applied {
        /// Restart-only keys whose new value was ignored.
        ignored: Vec<&'static str>,
    },
    /// Refused; why (the `file:line:column: key: message` of the error).
    Refused(String),
}

/// The reload state of the shell: the running configuration and where it came from.
pub struct Reloader {
    running: Config,
    path: Option<PathBuf>,
    adjust: Option<Adjust>,
    pub(crate) trigger: Option<tokio::sync::mpsc::Receiver<()>>,
    stats: ReloadStats,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader")
            .field("path", &self.path)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Reloader {
    /// The state of a shell started with `config` (not from a file yet: reloads are
    /// refused until [`Shell::reload_from`]).
    pub fn new(config: &Config) -> Reloader {
        Reloader {
            running: config.clone(),
            path: None,
            adjust: None,
            trigger: None,
            stats: ReloadStats::default(),
        }
    }

    /// The configuration in force.
    pub fn running(&self) -> &Config {
        &self.running
    }

    /// Counters.
    pub fn stats(&self) -> ReloadStats {
        self.stats
    }
}

/// Gives `next` the running values of every restart-only key, and names those that
/// differed.
fn keep_restart_only(running: &Config, next: &mut Config) -> Vec<&'static str> {
    let mut changed = Vec::new();
    let (a, b) = (&running.l2tp, &next.l2tp);
    for (key, differs) in [
        ("l2tp.listen", a.listen != b.listen),
        ("l2tp.host_name", a.host_name != b.host_name),
        ("l2tp.receive_window", a.receive_window != b.receive_window),
        ("l2tp.hello_interval", a.hello_interval != b.hello_interval),
        (
            "l2tp.retransmit_initial",
            a.retransmit_initial != b.retransmit_initial,
        ),
        ("l2tp.retransmit_cap", a.retransmit_cap != b.retransmit_cap),
        (
            "l2tp.retransmit_max_retries",
            a.retransmit_max_retries != b.retransmit_max_retries,
        ),
        ("l2tp.stopccn_wait", a.stopccn_wait != b.stopccn_wait),
        (
            "l2tp.half_open_timeout",
            a.half_open_timeout != b.half_open_timeout,
        ),
        ("l2tp.max_tunnels", a.max_tunnels != b.max_tunnels),
        ("ppp.gateway", running.ppp.gateway != next.ppp.gateway),
        ("dataplane", running.dataplane != next.dataplane),
        (
            "management.metrics",
            running.management.metrics != next.management.metrics,
        ),
        (
            "management.socket",
            running.management.socket != next.management.socket,
        ),
    ] {
        if differs {
            changed.push(key);
        }
    }
    next.l2tp = crate::config::L2tpConfig {
        accept_unknown_lacs: next.l2tp.accept_unknown_lacs,
        max_sessions: next.l2tp.max_sessions,
        ..running.l2tp.clone()
    };
    next.ppp.gateway = running.ppp.gateway;
    next.dataplane = running.dataplane.clone();
    next.management = running.management.clone();
    if let (Some(old), Some(new)) = (&running.radius, &mut next.radius) {
        if old.spool != new.spool {
            changed.push("radius.spool");
            new.spool = old.spool.clone();
        }
        if old.spool_max_records != new.spool_max_records {
            changed.push("radius.spool_max_records");
            new.spool_max_records = old.spool_max_records;
        }
        // The accounting client and its spool are built once at start (shell::acct).
        if old.spool_max_bytes != new.spool_max_bytes {
            changed.push("radius.spool_max_bytes");
            new.spool_max_bytes = old.spool_max_bytes;
        }
        if old.acct_servers != new.acct_servers {
            changed.push("radius.acct_server");
            new.acct_servers = old.acct_servers.clone();
        }
        if old.interim_interval != new.interim_interval {
            changed.push("radius.interim_interval");
            new.interim_interval = old.interim_interval;
        }
    }
    changed
}

impl Shell {
    /// Makes [`Shell::reload`] re-read `path` (what the daemon was started with), each
    /// fresh configuration passed through `adjust` first; every message on `trigger`
    /// (SIGHUP) reloads.
    pub fn reload_from(
        &mut self,
        path: PathBuf,
        adjust: Option<Adjust>,
        trigger: Option<tokio::sync::mpsc::Receiver<()>>,
    ) {
        self.reload.path = Some(path);
        self.reload.adjust = adjust;
        self.reload.trigger = trigger;
    }

    /// Reload counters.
    pub fn reload_stats(&self) -> ReloadStats {
        self.reload.stats
    }

    /// Re-reads the configuration and applies it (see the module documentation).
    pub fn reload(&mut self) -> ReloadOutcome {
        match self.try_reload() {
            Ok(ignored) => {
                self.reload.stats.ok += 1;
                for key in &ignored {
                    warn!(
                        key,
                        "configuration reload: {key} changed but applies only at start; \
                         keeping the running value"
                    );
                }
                info!(
                    lacs = self.reload.running.lacs.len(),
                    pools = self.reload.running.pools.len(),
                    users = self.ppp.users().len(),
                    stranded_leases = self.ppp.pools().stranded(),
                    radius = self.reload.running.radius.is_some(),
                    "configuration reloaded"
                );
                ReloadOutcome::Applied { ignored }
            }
            Err(why) => {
                self.reload.stats.failed += 1;
                error!(
                    error = %why,
                    "configuration reload refused; the running configuration stays"
                );
                ReloadOutcome::Refused(why)
            }
        }
    }

    fn try_reload(&mut self) -> Result<Vec<&'static str>, String> {
        let path = self
            .reload
            .path
            .clone()
            .ok_or("xlnsd was started without --config: nothing to reload")?;
        let mut next = Config::load(&path).map_err(|e: ConfigError| e.to_string())?;
        if let Some(adjust) = &self.reload.adjust {
            adjust(&mut next);
        }
        let ignored = keep_restart_only(&self.reload.running, &mut next);
        let users = match &next.users_file {
            Some(file) => Users::load(file).map_err(|e| e.to_string())?,
            None => Users::new(),
        };
        let pools = next
            .build_pools()
            .map_err(|e| format!("{}: pools: {e}", path.display()))?;
        // Everything is read and valid: apply.
        self.gate.reload(&next);
        let leases = self.ppp.reconfigure(&next, users, pools);
        info!(
            carried = leases.carried,
            stranded = leases.stranded,
            "pools reloaded"
        );
        match (&mut self.aaa, &next.radius) {
            (Some(aaa), radius) => aaa.reconfigure(radius.as_ref(), &next.lacs),
            (None, Some(radius)) => self.aaa = Some(Aaa::new(radius, &next.lacs)),
            (None, None) => {}
        }
        self.reload.running = next;
        Ok(ignored)
    }

    /// The reload counters as metric families.
    pub(crate) fn reload_families(
        &self,
    ) -> Vec<(&'static str, &'static str, super::metrics::Family)> {
        let s = self.reload.stats;
        vec![(
            "config_reloads",
            "Configuration reloads (SIGHUP, xlnsctl reload) by result.",
            super::metrics::Family::Counter(vec![
                (vec![("result", "ok".to_owned())], s.ok as f64),
                (vec![("result", "failed".to_owned())], s.failed as f64),
            ]),
        )]
    }
}

/// The next reload request on `trigger`, else never.
pub(crate) async fn triggered(trigger: &mut Option<tokio::sync::mpsc::Receiver<()>>) -> Option<()> {
    match trigger {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use crate::config::AaaMode;

    #[test]
    fn restart_only_keys_keep_their_running_values() {
        let running = Config::from_toml_str(
            "[l2tp]\nlisten = \"127.0.0.1:1701\"\nmax_sessions = 10\n[ppp]\ngateway = \"10.0.0.1\"\n\
             [management]\nsocket = \"/run/a\"\n",
            "a.toml",
        )
        .unwrap();
        let mut next = Config::from_toml_str(
            "[l2tp]\nlisten = \"127.0.0.1:1702\"\nmax_sessions = 20\naccept_unknown_lacs = true\n\
             [ppp]\ngateway = \"10.0.0.2\"\nmru = 1300\n[management]\nsocket = \"/run/a\"\n",
            "a.toml",
        )
        .unwrap();
        let ignored = keep_restart_only(&running, &mut next);
        assert_eq!(ignored, vec!["l2tp.listen", "ppp.gateway"]);
        assert_eq!(next.l2tp.listen, running.l2tp.listen);
        assert_eq!(next.ppp.gateway, running.ppp.gateway);
        // The reloadable ones keep their new values.
        assert_eq!(next.l2tp.max_sessions, 20);
        assert!(next.l2tp.accept_unknown_lacs);
        assert_eq!(next.ppp.mru, 1300);
        // Every key reported is listed in RESTART_ONLY.
        for key in ignored {
            assert!(RESTART_ONLY.contains(&key));
        }
    }

    /// The file at `path`: a free L2TP port on 127.0.0.1 (one per test run), then `text`.
    fn write(path: &std::path::Path, text: &str) {
        static PORT: std::sync::OnceLock<u16> = std::sync::OnceLock::new();
        let port = PORT.get_or_init(|| {
            std::net::UdpSocket::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        });
        std::fs::write(
            path,
            format!("[l2tp]\nlisten = \"127.0.0.1:{port}\"\n{text}"),
        )
        .unwrap();
    }

    #[tokio::test]
    async fn radius_settings_and_per_lac_aaa_reload() {
        let dir = std::env::temp_dir().join(format!("xlns-reload-aaa-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("xlnsd.toml");
        write(&path, "[[lac]]\nname = \"a\"\n");
        let config = Config::load(&path).unwrap();
        let mut shell = Shell::bind(&config, Users::new()).await.unwrap();
        assert!(
            matches!(shell.reload(), ReloadOutcome::Refused(_)),
            "no file yet"
        );
        shell.reload_from(path.clone(), None, None);
        assert!(shell.aaa.is_none());

        // [radius] appears, LAC "a" authenticates with it.
        let server = "[[radius.auth_server]]\naddress = \"127.0.0.1:1812\"\nsecret = \"s\"\n";
        write(
            &path,
            &format!("[[lac]]\nname = \"a\"\naaa = \"radius\"\n[radius]\n{server}"),
        );
        assert!(matches!(shell.reload(), ReloadOutcome::Applied { .. }));
        let aaa = shell.aaa.as_ref().unwrap();
        assert_eq!(aaa.mode_for(Some("a")), AaaMode::Radius);
        assert_eq!(aaa.mode_for(None), AaaMode::Local);

        // The default flips and LAC "a" goes local; a second server and new timers.
        write(
            &path,
            &format!(
                "[[lac]]\nname = \"a\"\naaa = \"local\"\n[radius]\nauth = \"radius\"\ntimeout = \"1s\"\n\
                 {server}[[radius.auth_server]]\naddress = \"127.0.0.1:1912\"\nsecret = \"t\"\n"
            ),
        );
        assert!(matches!(shell.reload(), ReloadOutcome::Applied { .. }));
        let aaa = shell.aaa.as_ref().unwrap();
        assert_eq!(aaa.mode_for(Some("a")), AaaMode::Local);
        assert_eq!(aaa.mode_for(None), AaaMode::Radius);
        assert_eq!(aaa.config().auth_servers.len(), 2);
        assert_eq!(aaa.config().timeout, std::time::Duration::from_secs(1));

        // A broken file changes nothing.
        write(&path, "[radius]\nauth = \"radius\"\n");
        match shell.reload() {
            ReloadOutcome::Refused(why) => assert!(
                why.contains("xlnsd.toml:4:8: radius.auth: RADIUS authentication needs"),
                "{why}"
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(shell.aaa.as_ref().unwrap().mode_for(None), AaaMode::Radius);

        // [radius] removed: new sessions authenticate locally.
        write(&path, "[[lac]]\nname = \"a\"\n");
        assert!(matches!(shell.reload(), ReloadOutcome::Applied { .. }));
        let aaa = shell.aaa.as_ref().unwrap();
        assert_eq!(aaa.mode_for(Some("a")), AaaMode::Local);
        assert_eq!(aaa.mode_for(None), AaaMode::Local);
        assert_eq!(shell.reload_stats(), ReloadStats { ok: 3, failed: 2 });
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
