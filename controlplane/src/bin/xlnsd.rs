//! xlnsd: the xlns control plane daemon (L2TP control connections, PPP, local users,
//! pools, RADIUS, the data plane's session table, management and metrics).
//!
//! SIGHUP (or `xlnsctl reload`) re-reads `--config` and applies policies, pools, users
//! and AAA settings without dropping a session (`xlns_controlplane::shell::reload`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tracing::{error, info};
use tracing_subscriber::EnvFilter;

use xlns_controlplane::config::Config;
use xlns_controlplane::ppp::users::Users;
use xlns_controlplane::shell::Shell;

/// xlns L2TPv2 Network Server: control plane daemon.
#[derive(Debug, Parser)]
#[command(name = "xlnsd", version)]
struct Args {
    /// Configuration file (TOML). Without it the built-in defaults apply.
    #[arg(short, long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Check the configuration, print the first error with file, line and key, and exit.
    #[arg(long)]
    check_config: bool,
    /// Override `[l2tp] listen`.
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Option<SocketAddr>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();

    let mut config = match &args.config {
        Some(path) => match Config::load(path) {
            Ok(config) => config,
            Err(e) => {
                eprintln!("xlnsd: {e}");
                return ExitCode::from(2);
            }
        },
        None => Config::default(),
    };
    let users = match &config.users_file {
        Some(path) => match Users::load(path) {
            Ok(users) => users,
            Err(e) => {
                eprintln!("xlnsd: {e}");
                return ExitCode::from(2);
            }
        },
        None => Users::new(),
    };
    if args.check_config {
        println!("configuration ok");
        return ExitCode::SUCCESS;
    }
    if let Some(listen) = args.listen {
        config.l2tp.listen = listen;
    }

    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("xlnsd: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let listen = args.listen;
    let result = runtime.block_on(async {
        let mut shell = Shell::bind(&config, users).await?;
        if let Some(path) = args.config.clone() {
            // SIGHUP re-reads the file; --listen keeps overriding it.
            let adjust: Option<xlns_controlplane::shell::reload::Adjust> = listen.map(|l| {
                Box::new(move |c: &mut Config| c.l2tp.listen = l)
                    as xlns_controlplane::shell::reload::Adjust
            });
            shell.reload_from(path, adjust, Some(hangups()?));
        }
        shell.run(shutdown_signal()).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!(error = %e, "xlnsd failed");
            ExitCode::FAILURE
        }
    }
}

/// One message per SIGHUP, for [`Shell::reload`].
fn hangups() -> std::io::Result<tokio::sync::mpsc::Receiver<()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup())?;
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            info!("SIGHUP: reloading the configuration");
            // A reload already queued covers this signal too.
            let _ = tx.try_send(());
        }
    });
    Ok(rx)
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
