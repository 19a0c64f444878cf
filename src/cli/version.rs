//! `tern version`.

/// Prints the version.
pub fn run() -> Result<(), String> {
    println!("tern {}", env!("CARGO_PKG_VERSION"));
    Ok(())
}
