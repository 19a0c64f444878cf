//! `tern version [--json]`, the help texts and the global logging flags, through the binary.

use std::process::Command;

fn tern(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tern"))
        .args(args)
        .env_remove("TERN_LOG")
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

#[test]
fn cli_version_text_and_json() {
    let out = tern(&["version"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with(&format!("tern {}", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );

    let out = tern(&["version", "--json"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert!(
        v["git_commit"].is_null() || v["git_commit"].is_string(),
        "{v}"
    );
    // The default build has the `demo` feature, and says so.
    assert_eq!(
        v["features"]
            .as_array()
            .map(|f| f.iter().any(|x| x == "demo")),
        Some(cfg!(feature = "demo")),
        "{v}"
    );
    assert_eq!(
        v["profile"],
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    assert_eq!(
        v["target"],
        format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS)
    );
}

#[test]
fn cli_help_explains_every_command() {
    let out = tern(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for command in ["plan", "check", "show", "health", "version"] {
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with(command) && l.len() > command.len() + 10),
            "{command} has no help line:\n{text}"
        );
    }
    assert!(
        text.contains("--log-level") && text.contains("--log-format"),
        "{text}"
    );

    let out = tern(&["show", "--help"]);
    let text = String::from_utf8(out.stdout).unwrap();
    for what in [
        "peers", "routes", "rib", "fib", "status", "--json", "--socket",
    ] {
        assert!(text.contains(what), "{what}:\n{text}");
    }
    let out = tern(&["health", "--help"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("--ready") && text.contains("--live"),
        "{text}"
    );
}

#[test]
fn cli_bad_logging_flags_are_usage_errors() {
    let out = tern(&["--log-format", "xml", "version"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("xml") && err.contains("human"), "{err}");
    // Accepted values parse (the daemon applies them; other commands ignore them).
    let out = tern(&["--log-format", "json", "--log-level", "debug", "version"]);
    assert!(out.status.success());
}

#[test]
fn cli_output_into_a_closed_pipe_does_not_panic() {
    // `tern ... | head -0`: the reader is gone before tern writes.
    let manifests = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/clusters/mesh-ipip-crosssubnet/manifests"
    );
    for args in [
        &["version", "--json"][..],
        &["plan", "--node", "n9", "--datastore", manifests],
        &["check", "--datastore", manifests],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(env!("CARGO_BIN_EXE_tern"))
            .args(args)
            .env_remove("NODENAME")
            .stdout(writer)
            .output()
            .unwrap();
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
    }
}
