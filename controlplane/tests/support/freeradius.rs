//! A real FreeRADIUS (Debian package `freeradius`, 3.2.x) for the tests, started with its
//! own configuration in a temporary directory (see `radius_freeradius.rs` for the
//! Message-Authenticator note). Include it with
//! `#[path = "support/freeradius.rs"] mod freeradius;`.
//!
//! `FreeRadius::start` fails the test when FreeRADIUS is not installed, unless
//! `XLNS_SKIP_FREERADIUS=1` (then it returns `None`).
#![allow(dead_code, clippy::unwrap_used, clippy::panic)]

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use xlns_controlplane::radius::client::{ClientConfig, ServerConfig};

/// The shared secret of every client.
pub const SECRET: &str = "xlns-test-secret";

pub fn freeradius_binary() -> Option<PathBuf> {
    for p in ["/usr/sbin/freeradius", "/usr/sbin/radiusd"] {
        if Path::new(p).exists() {
            return Some(PathBuf::from(p));
        }
    }
    if std::env::var_os("XLNS_SKIP_FREERADIUS").is_some_and(|v| v == "1") {
        eprintln!("FreeRADIUS not installed: skipped (XLNS_SKIP_FREERADIUS=1)");
        return None;
    }
    panic!(
        "FreeRADIUS is not installed (/usr/sbin/freeradius): apt-get install freeradius \
         freeradius-utils, or set XLNS_SKIP_FREERADIUS=1 to skip these tests"
    );
}

pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub const USERS: &str = r#"papuser Cleartext-Password := "pap-pass"
	Framed-IP-Address = 10.11.12.13,
	Framed-IP-Netmask = 255.255.255.255,
	Framed-Route = "192.0.2.0/24 0.0.0.0 1",
	Session-Timeout = 3600,
	Idle-Timeout = 600,
	Acct-Interim-Interval = 300,
	Framed-MTU = 1400,
	MS-Primary-DNS-Server = 198.51.100.53,
	MS-Secondary-DNS-Server = 198.51.100.54,
	Class = "class-pap"

chapuser Cleartext-Password := "chap-pass"
	Framed-Pool = "gold",
	Framed-Route = "203.0.113.0/25",
	Session-Timeout = 7200,
	Idle-Timeout = 900,
	Class = "class-chap"

msuser Cleartext-Password := "ms-pass"
	Framed-IP-Address = 10.11.12.14,
	Framed-Pool = "silver",
	Session-Timeout = 1800,
	Idle-Timeout = 300,
	Class = "class-ms"
"#;

/// A FreeRADIUS process with its configuration directory; killed and removed on drop.
pub struct FreeRadius {
    pub child: Child,
    pub dir: PathBuf,
    pub auth: SocketAddr,
    pub acct: SocketAddr,
}

/// A configuration directory for FreeRADIUS (not started): `radiusd.conf` listening on
/// 127.0.0.1 at `auth` / `acct`, the users file `users`. Started by [`FreeRadius::start`],
/// or by a script in another network namespace (`freeradius -f -X -d <dir>`).
pub struct Prepared {
    pub dir: PathBuf,
    pub auth_port: u16,
    pub acct_port: u16,
}

impl Prepared {
    /// Writes the configuration of a FreeRADIUS named `name` with these `users` into a
    /// fresh directory under `parent`.
    pub fn write(parent: &Path, name: &str, users: &str) -> Prepared {
        let dir = parent.join(format!("xlns-fr-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (auth_port, acct_port) = (free_udp_port(), free_udp_port());
        let d = dir.display();
        let conf = format!(
            r#"prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = /usr/sbin
logdir = {d}
raddbdir = {d}
radacctdir = {d}
name = freeradius
confdir = {d}
modconfdir = {d}
run_dir = {d}
db_dir = {d}
libdir = /usr/lib/freeradius
pidfile = {d}/radiusd.pid
max_request_time = 30
cleanup_delay = 5
max_requests = 1024
hostname_lookups = no
log {{
  destination = stdout
  auth = yes
}}
security {{
  allow_core_dumps = no
  max_attributes = 200
  reject_delay = 0
  status_server = no
}}
thread pool {{
  start_servers = 1
  max_servers = 2
  min_spare_servers = 1
  max_spare_servers = 2
  max_requests_per_server = 0
}}
client xlns {{
  ipaddr = 127.0.0.1
  secret = {SECRET}
  require_message_authenticator = yes
}}
modules {{
  pap {{
  }}
  chap {{
  }}
  mschap {{
  }}
  files {{
    filename = {d}/users
  }}
  detail {{
    filename = {d}/detail
    header = "%t"
    permissions = 0600
    locking = no
  }}
}}
server default {{
  listen {{
    type = auth
    ipaddr = 127.0.0.1
    port = {auth_port}
  }}
  listen {{
    type = acct
    ipaddr = 127.0.0.1
    port = {acct_port}
  }}
  authorize {{
    files
    chap
    mschap
    pap
  }}
  authenticate {{
    Auth-Type PAP {{
      pap
    }}
    Auth-Type CHAP {{
      chap
    }}
    Auth-Type MS-CHAP {{
      mschap
    }}
  }}
  preacct {{
  }}
  accounting {{
    detail
  }}
  post-auth {{
    update reply {{
      Message-Authenticator := 0x00
    }}
    Post-Auth-Type REJECT {{
      update reply {{
        Message-Authenticator := 0x00
      }}
    }}
  }}
}}
"#
        );
        std::fs::write(dir.join("radiusd.conf"), conf).unwrap();
        std::fs::write(dir.join("users"), users).unwrap();
        Prepared {
            dir,
            auth_port,
            acct_port,
        }
    }
}

impl FreeRadius {
    pub fn start(name: &str) -> Option<FreeRadius> {
        FreeRadius::start_with_users(name, USERS)
    }

    /// [`FreeRadius::start`] with another users file.
    pub fn start_with_users(name: &str, users: &str) -> Option<FreeRadius> {
        let bin = freeradius_binary()?;
        let Prepared {
            dir,
            auth_port,
            acct_port,
        } = Prepared::write(&std::env::temp_dir(), name, users);
        let log = std::fs::File::create(dir.join("radiusd.log")).unwrap();
        let child = Command::new(bin)
            .args(["-f", "-X", "-d"])
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut fr = FreeRadius {
            child,
            dir,
            auth: SocketAddr::from((Ipv4Addr::LOCALHOST, auth_port)),
            acct: SocketAddr::from((Ipv4Addr::LOCALHOST, acct_port)),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let log = fr.log();
            if log.contains("Ready to process requests") {
                return Some(fr);
            }
            if let Ok(Some(status)) = fr.child.try_wait() {
                panic!("freeradius exited with {status}:\n{log}");
            }
            if Instant::now() > deadline {
                panic!("freeradius not ready after 20 s:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("radiusd.log")).unwrap_or_default()
    }

    pub fn server(addr: SocketAddr) -> ServerConfig {
        ServerConfig {
            address: addr,
            secret: SECRET.as_bytes().to_vec(),
        }
    }

    pub fn client_config(&self) -> ClientConfig {
        ClientConfig {
            auth_servers: vec![FreeRadius::server(self.auth)],
            acct_servers: vec![FreeRadius::server(self.acct)],
            initial_rto: Duration::from_millis(500),
            max_transmissions: 3,
            ..ClientConfig::default()
        }
    }
}

/// One record of FreeRADIUS' `detail` file: its attributes, `Name = value` (strings
/// without their quotes), in file order.
pub type DetailRecord = Vec<(String, String)>;

/// The records of a `detail` file's text (records are separated by blank lines; the first
/// line of each is its time stamp; attributes are tab-indented `Name = value` lines).
pub fn parse_detail(text: &str) -> Vec<DetailRecord> {
    text.split("\n\n")
        .filter(|r| !r.trim().is_empty())
        .map(|r| {
            r.lines()
                .filter(|l| l.starts_with('\t'))
                .filter_map(|l| {
                    let (k, v) = l.trim().split_once(" = ")?;
                    Some((k.to_owned(), v.trim_matches('"').to_owned()))
                })
                .collect()
        })
        .collect()
}

/// The value of attribute `name` in `record`.
pub fn detail_value<'a>(record: &'a DetailRecord, name: &str) -> Option<&'a str> {
    record
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

impl FreeRadius {
    /// The records of the `detail` file so far.
    pub fn detail(&self) -> Vec<DetailRecord> {
        parse_detail(&std::fs::read_to_string(self.dir.join("detail")).unwrap_or_default())
    }

    /// Kills the server, keeping its directory (and `detail` file) and its ports.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same ports and directory (after [`FreeRadius::stop`]).
    pub fn restart(&mut self) {
        let ready_before = self.log().matches("Ready to process requests").count();
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.join("radiusd.log"))
            .unwrap();
        self.child = Command::new(freeradius_binary().unwrap())
            .args(["-f", "-X", "-d"])
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.log().matches("Ready to process requests").count() == ready_before {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("freeradius exited with {status}:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "freeradius not ready after a restart"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for FreeRadius {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("FreeRADIUS log kept in {}", self.dir.display());
        }
    }
}
