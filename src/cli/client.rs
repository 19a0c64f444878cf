//! What `tern show` and `tern health` share: finding the control socket, asking the daemon,
//! printing its answer and choosing the exit code.

use std::io::ErrorKind as IoErrorKind;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use clap::Args;

use super::{Cli, one_line, print_out};
use crate::config::Settings;
use crate::io::control::format::{exit_status, render};
use crate::io::control::{ClientError, Request, Response, request};
use crate::status::Timestamp;

/// Exit code when the daemon cannot be asked.
pub const EXIT_UNREACHABLE: u8 = 2;

/// Options of every command that asks the running daemon.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// Print the daemon's answer as JSON (the response body; errors as {"error": ...}).
    #[arg(long, global = true)]
    pub json: bool,
    /// tern's control socket (default: settings control.socket, else /var/run/tern/tern.ctl).
    #[arg(long, global = true, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// How long to wait for the daemon to answer (e.g. 500ms, 5s).
    #[arg(long, global = true, value_name = "DURATION", default_value = "5s",
          value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

/// The socket to use: `--socket`, else the settings file's `control.socket` (whose default is
/// `/var/run/tern/tern.ctl`).
fn socket_path(cli: &Cli, args: &ClientArgs) -> Result<PathBuf, String> {
    if let Some(path) = &args.socket {
        return Ok(path.clone());
    }
    Settings::load(cli.config.as_deref())
        .map(|s| s.control.socket)
        .map_err(|e| format!("{e} (pass --socket PATH to name the control socket directly)"))
}

/// The one line printed when the daemon cannot be asked.
fn client_error_line(error: &ClientError) -> String {
    match error {
        ClientError::Connect { path, source } => {
            let hint = if source.kind() == IoErrorKind::PermissionDenied {
                "is this user allowed to use the socket (owner or group)?"
            } else {
                "is tern running?"
            };
            format!("cannot reach tern at {}: {source} ({hint})", path.display())
        }
        other => other.to_string(),
    }
}

/// Sends `request`, prints the answer (`--json`: the JSON body on stdout; else the human form,
/// errors on stderr) and returns the exit code of [`exit_status`], or 2 when the daemon cannot be
/// asked.
pub fn ask_and_print(cli: &Cli, args: &ClientArgs, request_: &Request) -> ExitCode {
    ask_and_print_with(cli, args, request_, |_, _| None)
}

/// As [`ask_and_print`], with `human` choosing the human form of a response (`None`: the
/// standard one of [`render`]).
pub fn ask_and_print_with(
    cli: &Cli,
    args: &ClientArgs,
    request_: &Request,
    human: impl Fn(&Response, Timestamp) -> Option<String>,
) -> ExitCode {
    let path = match socket_path(cli, args) {
        Ok(p) => p,
        Err(message) => {
            eprintln!("error: {}", one_line(&message));
            return ExitCode::from(EXIT_UNREACHABLE);
        }
    };
    let response = match request(&path, request_, args.timeout) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {}", one_line(&client_error_line(&e)));
            return ExitCode::from(EXIT_UNREACHABLE);
        }
    };
    let now = Timestamp::from_system_time(SystemTime::now());
    let text = match (args.json, human(&response, now)) {
        (false, Some(text)) => text,
        _ => render(&response, args.json, now),
    };
    if matches!(response, Response::Error(_)) && !args.json {
        eprint!("{text}");
    } else {
        print_out(&text);
    }
    ExitCode::from(exit_status(&response))
}
