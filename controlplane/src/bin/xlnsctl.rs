//! xlnsctl: inspect and control a running xlnsd over its management socket
//! (`[management] socket`, line-delimited JSON; see `xlns_controlplane::shell::mgmt`).
//!
//! `xlnsctl [--socket PATH] [--json] show tunnels | show sessions [--user U]
//! [--address A] [--lac L] [--tunnel T] | show session T/S | show pools | show workers |
//! show radius | clear session T/S | clear tunnel T | reload`

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use serde_json::{Value, json};

/// xlns L2TPv2 Network Server: operator command line.
#[derive(Debug, Parser)]
#[command(name = "xlnsctl", version)]
struct Args {
    /// The management socket of xlnsd.
    #[arg(short, long, default_value = "/run/xlns/xlnsd.sock")]
    socket: PathBuf,
    /// Print the JSON answer instead of a table.
    #[arg(long)]
    json: bool,
    /// The command, e.g. `show sessions --user alice`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    command: Vec<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let answer = match ask(&args) {
        Ok(answer) => answer,
        Err(e) => {
            eprintln!("xlnsctl: {}: {e}", args.socket.display());
            return ExitCode::from(2);
        }
    };
    if args.json {
        println!("{answer}");
    } else {
        print!("{}", human(&answer));
    }
    if answer.get("ok").and_then(Value::as_bool) == Some(true) {
        ExitCode::SUCCESS
    } else {
        if !args.json {
            eprintln!(
                "xlnsctl: {}",
                answer
                    .get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("failed")
            );
        }
        ExitCode::FAILURE
    }
}

fn ask(args: &Args) -> std::io::Result<Value> {
    let mut stream = UnixStream::connect(&args.socket)?;
    let mut line = json!({ "args": args.command }).to_string();
    line.push('\n');
    stream.write_all(line.as_bytes())?;
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer)?;
    serde_json::from_str(&answer)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "-".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(f) if n.is_f64() => format!("{f:.1}"),
            _ => n.to_string(),
        },
        Some(other) => other.to_string(),
    }
}

/// A table with a header line for `columns`/`rows`, or the message.
fn human(answer: &Value) -> String {
    if let Some(message) = answer.get("message").and_then(Value::as_str) {
        return format!("{message}\n");
    }
    let Some(columns) = answer.get("columns").and_then(Value::as_array) else {
        return String::new();
    };
    let columns: Vec<&str> = columns.iter().filter_map(Value::as_str).collect();
    let rows: Vec<Vec<String>> = answer
        .get("rows")
        .and_then(Value::as_array)
        .map(|rows| {
            rows.iter()
                .map(|r| columns.iter().map(|c| cell(r.get(*c))).collect())
                .collect()
        })
        .unwrap_or_default();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            rows.iter()
                .map(|r| r[i].len())
                .chain([c.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let line = |cells: Vec<String>| {
        let mut l = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ");
        l.truncate(l.trim_end().len());
        l.push('\n');
        l
    };
    out.push_str(&line(columns.iter().map(|c| c.to_uppercase()).collect()));
    for row in rows {
        out.push_str(&line(row));
    }
    out
}
