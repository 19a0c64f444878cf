//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// Parses hex digits, ignoring whitespace.
pub fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    assert!(
        s.len().is_multiple_of(2),
        "odd number of hex digits in {s:?}"
    );
    (0..s.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&s[i..i + 2], 16).unwrap_or_else(|e| panic!("bad hex {s:?}: {e}"))
        })
        .collect()
}

/// Formats bytes as lowercase hex.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The repository's `fixtures/` directory.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("fixtures")
}

use bgp_proto::{AddPathFamilies, Context, Family};

/// A golden vector file: the message bytes and the context to decode them with.
pub struct Vector {
    pub bytes: Vec<u8>,
    pub context: Context,
    pub comments: Vec<String>,
}

/// Parses a `.hex` vector: `#` lines are comments, `# context: k=v ...` sets the decode context
/// (defaults: four_octet_as=true, no add_path, extended_message=false), other lines are hex.
pub fn parse_vector(text: &str) -> Result<Vector, String> {
    let mut context = Context::default();
    let mut hex_digits = String::new();
    let mut comments = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(comment) = line.strip_prefix('#') {
            let comment = comment.trim();
            if let Some(ctx) = comment.strip_prefix("context:") {
                context = parse_context(ctx)?;
            }
            comments.push(comment.to_string());
        } else {
            hex_digits.push_str(line);
        }
    }
    let digits: String = hex_digits.split_whitespace().collect();
    if !digits.len().is_multiple_of(2) || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err("hex lines must hold an even number of hex digits".into());
    }
    Ok(Vector {
        bytes: hex(&digits),
        context,
        comments,
    })
}

/// Parses `four_octet_as=true add_path=ipv4-unicast,ipv6-unicast extended_message=false`.
pub fn parse_context(s: &str) -> Result<Context, String> {
    let mut ctx = Context::default();
    for item in s.split_whitespace() {
        let (key, value) = item
            .split_once('=')
            .ok_or_else(|| format!("context item {item:?} is not key=value"))?;
        let flag = |v: &str| match v {
            "true" => Ok(true),
            "false" => Ok(false),
            other => Err(format!("{key}: expected true or false, got {other:?}")),
        };
        match key {
            "four_octet_as" => ctx.four_octet_as = flag(value)?,
            "extended_message" => ctx.extended_message = flag(value)?,
            "add_path" => {
                let mut set = AddPathFamilies::NONE;
                for f in value.split(',').filter(|f| !f.is_empty() && *f != "none") {
                    let family: Family = f.parse()?;
                    set.insert(family);
                }
                ctx.add_path = set;
            }
            other => return Err(format!("unknown context key {other:?}")),
        }
    }
    Ok(ctx)
}

/// Formats a context the way `parse_context` reads it.
pub fn format_context(ctx: &Context) -> String {
    let families: Vec<String> = ctx.add_path.iter().map(|f| f.to_string()).collect();
    format!(
        "four_octet_as={} add_path={} extended_message={}",
        ctx.four_octet_as,
        if families.is_empty() {
            "none".to_string()
        } else {
            families.join(",")
        },
        ctx.extended_message
    )
}
