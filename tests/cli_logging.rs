//! `tern::logging::init` installs the process-wide subscriber once; the handle changes the level
//! while running. (Formats and filters are tested in the unit tests over an in-memory writer.)

use tern::logging::{FilterOrigin, LogError, LogFormat, LogSettings, init};

#[test]
fn cli_logging_init_once_then_reload() {
    let settings = LogSettings {
        format: LogFormat::Json,
        filter: "warn".into(),
        origin: FilterOrigin::Flag,
    };
    let handle = init(&settings).expect("first init");
    assert!(tracing::enabled!(tracing::Level::WARN));
    assert!(!tracing::enabled!(tracing::Level::INFO));
    handle.set_filter("Debug").unwrap();
    assert!(tracing::enabled!(tracing::Level::DEBUG));
    assert!(matches!(
        handle.set_filter("chatty"),
        Err(LogError::BadFilter { .. })
    ));
    assert!(
        tracing::enabled!(tracing::Level::DEBUG),
        "a bad filter changes nothing"
    );
    assert!(matches!(
        init(&settings),
        Err(LogError::AlreadyInitialised(_))
    ));
    let bad = LogSettings {
        filter: "=".into(),
        ..settings
    };
    assert!(matches!(init(&bad), Err(LogError::BadFilter { .. })));
}
