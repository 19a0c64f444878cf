//! Writing captured messages as golden-vector files for `bgp-proto`.
//!
//! Format (read by the codec's golden test): lines starting with `#` are comments, among them
//! `# source: ...` and `# context: four_octet_as=.. [add_path=..] extended_message=..`; every
//! other line is hex digits, together exactly one complete BGP message (marker, length,
//! type, body).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::classify::DecodeContext;

/// `<workspace>/fixtures/messages/captured`.
pub fn captured_fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/messages/captured")
}

/// One vector to write.
#[derive(Debug, Clone)]
pub struct FixtureVector {
    /// File stem, e.g. `frr-update-ipv6-mp-reach-link-local`.
    pub name: String,
    /// The `# source:` text (implementations, versions, how and when captured).
    pub source: String,
    /// Extra comment lines (what the message is, which session).
    pub notes: Vec<String>,
    /// The receiver's decode context.
    pub context: DecodeContext,
    /// The complete message.
    pub message: Vec<u8>,
}

impl FixtureVector {
    /// The file's text: comments, then the message in lines of 32 bytes of hex.
    pub fn render(&self) -> String {
        let mut text = String::new();
        let _ = writeln!(text, "# source: {}", self.source);
        for note in &self.notes {
            let _ = writeln!(text, "# {note}");
        }
        let _ = writeln!(text, "# context: {}", self.context.fixture_line());
        for chunk in self.message.chunks(32) {
            for byte in chunk {
                let _ = write!(text, "{byte:02x}");
            }
            text.push('\n');
        }
        text
    }
}

/// Writes `<dir>/<name>.hex`; returns its path.
pub fn write_vector(dir: &Path, vector: &FixtureVector) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("{}.hex", vector.name));
    std::fs::write(&path, vector.render())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}
