//! xlns-bench: benchmark drivers for xlns.
//!
//! `xlns-bench l2tp-setup --lns ADDR:PORT --tunnels N --sessions-per-tunnel M` opens N
//! tunnels x M sessions toward an LNS as an LAC (RFC 2661), tears them down, and prints
//! counts, rates and setup latency percentiles (a table, or one JSON line with `--json`).

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use xlns_bench::lac::{LacConfig, LacDriver, Teardown};

#[derive(Debug, Parser)]
#[command(name = "xlns-bench", version, about = "xlns benchmark drivers")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum TeardownArg {
    /// CDN for every session, then StopCCN for every tunnel.
    CdnStopccn,
    /// StopCCN for every tunnel only.
    Stopccn,
    /// Leave everything up (the LNS cleans up by HELLO).
    None,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// L2TP-only setup rate: N tunnels x M sessions as an LAC, then teardown.
    L2tpSetup {
        /// The LNS's L2TP control address.
        #[arg(long, value_name = "ADDR:PORT")]
        lns: SocketAddr,
        /// Tunnels to open.
        #[arg(long, default_value_t = 1)]
        tunnels: usize,
        /// Sessions per tunnel.
        #[arg(long, default_value_t = 1)]
        sessions_per_tunnel: usize,
        /// Opens (SCCRQ or ICRQ) per second at most; unlimited when absent.
        #[arg(long)]
        rate: Option<f64>,
        /// Setups in flight at most.
        #[arg(long, default_value_t = 64)]
        outstanding: usize,
        /// Local UDP sockets (source ports); tunnels are spread over them.
        #[arg(long, default_value_t = 1)]
        sockets: usize,
        /// Local address to bind.
        #[arg(long)]
        bind: Option<IpAddr>,
        /// How to tear down.
        #[arg(long, value_enum, default_value_t = TeardownArg::CdnStopccn)]
        teardown: TeardownArg,
        /// Seconds the setup phase may take.
        #[arg(long, default_value_t = 120)]
        setup_timeout: u64,
        /// Seconds the teardown may take.
        #[arg(long, default_value_t = 60)]
        teardown_timeout: u64,
        /// Our Host Name AVP.
        #[arg(long, default_value = "xlns-bench-lac")]
        host_name: String,
        /// Print one JSON line instead of the table.
        #[arg(long)]
        json: bool,
        /// Print the table and then the JSON line.
        #[arg(long)]
        both: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::L2tpSetup {
            lns,
            tunnels,
            sessions_per_tunnel,
            rate,
            outstanding,
            sockets,
            bind,
            teardown,
            setup_timeout,
            teardown_timeout,
            host_name,
            json,
            both,
        } => {
            let config = LacConfig {
                sockets,
                bind,
                rate,
                outstanding,
                setup_timeout: Duration::from_secs(setup_timeout),
                teardown_timeout: Duration::from_secs(teardown_timeout),
                host_name,
                ..LacConfig::new(lns, tunnels, sessions_per_tunnel)
            };
            match l2tp_setup(config, teardown, json, both) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::from(1),
                Err(e) => {
                    eprintln!("xlns-bench: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}

/// Runs the setup benchmark; `Ok(false)` when a setup failed or a phase timed out.
fn l2tp_setup(
    config: LacConfig,
    teardown: TeardownArg,
    json: bool,
    both: bool,
) -> std::io::Result<bool> {
    let mut driver = LacDriver::bind(config)?;
    let mut ok = driver.establish()?;
    ok &= match teardown {
        TeardownArg::CdnStopccn => driver.teardown(Teardown::CdnThenStopCcn)?,
        TeardownArg::Stopccn => driver.teardown(Teardown::StopCcnOnly)?,
        TeardownArg::None => true,
    };
    let report = driver.report();
    ok &= report.tunnel_failures == 0 && report.session_failures == 0;
    if !json || both {
        println!("{report}");
    }
    if json || both {
        println!(
            "{}",
            serde_json::to_string(&report).map_err(std::io::Error::other)?
        );
    }
    Ok(ok)
}
