//! Parsing the commands of BIRD's control protocol that tern answers.
//!
//! Keywords are matched case-insensitively and in full (the `birdc` client expands abbreviations
//! itself before sending). Protocol names may be given bare or as a quoted pattern with `*` and
//! `?`, as in BIRD.

use std::net::IpAddr;

use ipnet::IpNet;

/// Which protocols a `show protocols` command selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtocolSelection {
    /// All of them.
    All,
    /// The protocol with this exact name (BIRD: a symbol).
    Name(String),
    /// Those whose names match a shell-like pattern (BIRD: a quoted string).
    Pattern(String),
}

/// Options of `show route`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteOptions {
    /// `all`: attribute lines after each route.
    pub all: bool,
    /// `<prefix>`: only this network.
    pub prefix: Option<IpNet>,
    /// `for <address or prefix>`: the longest match.
    pub for_net: Option<IpNet>,
    /// `protocol <name>`: only routes from this protocol.
    pub protocol: Option<String>,
    /// `count`: only counts.
    pub count: bool,
}

/// A parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// An empty line: no reply.
    Empty,
    /// `show status`.
    ShowStatus,
    /// `show protocols [all] [name | "pattern"]`.
    ShowProtocols {
        /// `all`: the details block.
        all: bool,
        /// Which.
        which: ProtocolSelection,
    },
    /// `show route ...`.
    ShowRoute(RouteOptions),
    /// `restrict`: this session is read-only anyway.
    Restrict,
    /// `quit` / `exit`: close the connection.
    Quit,
    /// `disable`, `enable` or `restart` of BGP protocols (peers).
    Admin {
        /// What to do.
        action: AdminAction,
        /// Which protocols (`all`, a name, or a quoted pattern).
        which: ProtocolSelection,
    },
    /// Another BIRD command that changes state; tern does not serve it.
    Denied,
}

/// The protocol commands of BIRD that tern serves on its BIRD-compatible socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminAction {
    /// `disable <protocol>`: Cease/2 (Administrative Shutdown), stays down.
    Disable,
    /// `enable <protocol>`.
    Enable,
    /// `restart <protocol>`: Cease/4 (Administrative Reset), then up again.
    Restart,
}

/// A command that could not be parsed; the text follows BIRD's `9001` messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

/// Splits a command line into words, keeping double-quoted strings (without the quotes) as one
/// word marked as quoted.
fn tokenize(line: &str) -> Result<Vec<(String, bool)>, ParseError> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' {
            chars.next();
            let mut word = String::new();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some(c) => word.push(c),
                    None => return Err(ParseError("Unterminated string".into())),
                }
            }
            out.push((word, true));
        } else {
            let mut word = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() || c == '"' {
                    break;
                }
                word.push(c);
                chars.next();
            }
            out.push((word, false));
        }
    }
    Ok(out)
}

fn unexpected(word: Option<&(String, bool)>) -> ParseError {
    match word {
        Some((w, _)) => ParseError(format!("syntax error, unexpected {w}")),
        None => ParseError("syntax error, unexpected END".into()),
    }
}

fn is(word: Option<&(String, bool)>, keyword: &str) -> bool {
    matches!(word, Some((w, false)) if w.eq_ignore_ascii_case(keyword))
}

const MUTATING: &[&str] = &[
    "configure",
    "disable",
    "enable",
    "restart",
    "reload",
    "down",
    "graceful",
    "debug",
    "mrtdump",
    "dump",
    "eval",
];

/// Parses one command line.
pub fn parse(line: &str) -> Result<Command, ParseError> {
    let words = tokenize(line)?;
    let mut it = words.iter().peekable();
    let Some(first) = it.next() else {
        return Ok(Command::Empty);
    };
    if is(Some(first), "quit") || is(Some(first), "exit") {
        return Ok(Command::Quit);
    }
    if is(Some(first), "restrict") {
        return Ok(Command::Restrict);
    }
    for (keyword, action) in [
        ("disable", AdminAction::Disable),
        ("enable", AdminAction::Enable),
        ("restart", AdminAction::Restart),
    ] {
        if !is(Some(first), keyword) {
            continue;
        }
        let which = match it.next() {
            Some((w, false)) if w.eq_ignore_ascii_case("all") => ProtocolSelection::All,
            Some((w, true)) => ProtocolSelection::Pattern(w.clone()),
            Some((w, false)) => ProtocolSelection::Name(w.clone()),
            // BIRD: a protocol is required.
            None => {
                return Err(ParseError(
                    "syntax error, unexpected END, expecting CF_SYM_KNOWN or TEXT or ALL".into(),
                ));
            }
        };
        // BIRD accepts an optional quoted message after the protocol (RFC 9003 text); tern
        // sends its own, so any further word is taken as that message and ignored.
        return Ok(Command::Admin { action, which });
    }
    if MUTATING.iter().any(|k| is(Some(first), k)) {
        return Ok(Command::Denied);
    }
    if !is(Some(first), "show") {
        return Err(unexpected(Some(first)));
    }
    let what = it.next();
    if is(what, "status") {
        return match it.next() {
            None => Ok(Command::ShowStatus),
            w => Err(unexpected(w)),
        };
    }
    if is(what, "protocols") || is(what, "protocol") {
        let mut all = false;
        if is(it.peek().copied(), "all") {
            all = true;
            it.next();
        }
        let which = match it.next() {
            None => ProtocolSelection::All,
            Some((w, true)) => ProtocolSelection::Pattern(w.clone()),
            Some((w, false)) => ProtocolSelection::Name(w.clone()),
        };
        return match it.next() {
            None => Ok(Command::ShowProtocols { all, which }),
            w => Err(ParseError(format!("{}, expecting END", unexpected(w).0))),
        };
    }
    if is(what, "route") {
        let mut opts = RouteOptions::default();
        while let Some(word) = it.next() {
            if is(Some(word), "all") {
                opts.all = true;
            } else if is(Some(word), "count") || is(Some(word), "stats") {
                opts.count = true;
            } else if is(Some(word), "for") {
                let target = it.next().ok_or_else(|| unexpected(None))?;
                opts.for_net = Some(parse_net_or_addr(&target.0)?);
            } else if is(Some(word), "protocol") {
                let name = it.next().ok_or_else(|| unexpected(None))?;
                opts.protocol = Some(name.0.clone());
            } else if let Ok(net) = word.0.parse::<IpNet>() {
                if opts.prefix.is_some() {
                    return Err(ParseError("Only one prefix expected".into()));
                }
                opts.prefix = Some(net.trunc());
            } else {
                return Err(unexpected(Some(word)));
            }
        }
        return Ok(Command::ShowRoute(opts));
    }
    Err(unexpected(what))
}

fn parse_net_or_addr(s: &str) -> Result<IpNet, ParseError> {
    if let Ok(net) = s.parse::<IpNet>() {
        return Ok(net);
    }
    s.parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| ParseError(format!("syntax error, unexpected {s}")))
}

/// BIRD's pattern match: `*` any run of characters, `?` any one character. Linear in the
/// product of the lengths at worst (greedy with one backtrack point), whatever the pattern.
pub fn pattern_matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || (p[pi] != '*' && p[pi] == n[ni])) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_calico_and_birdc_send() {
        assert_eq!(parse("show status"), Ok(Command::ShowStatus));
        assert_eq!(parse("  SHOW   Status "), Ok(Command::ShowStatus));
        assert_eq!(
            parse("show protocols"),
            Ok(Command::ShowProtocols {
                all: false,
                which: ProtocolSelection::All
            })
        );
        assert_eq!(
            parse("show protocols all Mesh_10_0_0_2"),
            Ok(Command::ShowProtocols {
                all: true,
                which: ProtocolSelection::Name("Mesh_10_0_0_2".into())
            })
        );
        assert_eq!(
            parse("show protocols \"Mesh*\""),
            Ok(Command::ShowProtocols {
                all: false,
                which: ProtocolSelection::Pattern("Mesh*".into())
            })
        );
        assert_eq!(
            parse("show route"),
            Ok(Command::ShowRoute(RouteOptions::default()))
        );
        assert_eq!(
            parse("show route for 10.65.2.7 all"),
            Ok(Command::ShowRoute(RouteOptions {
                all: true,
                for_net: Some("10.65.2.7/32".parse().unwrap()),
                ..RouteOptions::default()
            }))
        );
        assert_eq!(parse(""), Ok(Command::Empty));
        assert_eq!(parse("quit"), Ok(Command::Quit));
        assert_eq!(
            parse("disable Mesh_10_0_0_2"),
            Ok(Command::Admin {
                action: AdminAction::Disable,
                which: ProtocolSelection::Name("Mesh_10_0_0_2".into())
            })
        );
        assert_eq!(
            parse("restart \"Mesh*\""),
            Ok(Command::Admin {
                action: AdminAction::Restart,
                which: ProtocolSelection::Pattern("Mesh*".into())
            })
        );
        assert_eq!(
            parse("enable all"),
            Ok(Command::Admin {
                action: AdminAction::Enable,
                which: ProtocolSelection::All
            })
        );
        assert!(parse("disable").is_err());
        assert_eq!(parse("configure"), Ok(Command::Denied));
        assert_eq!(parse("reload Mesh_10_0_0_2"), Ok(Command::Denied));
        assert!(parse("show foo").is_err());
        assert!(
            parse("show protocols a b")
                .unwrap_err()
                .0
                .ends_with("expecting END")
        );
        assert!(parse("show protocols \"unterminated").is_err());
        assert!(parse("show route 10.0.0.0/8 10.1.0.0/16").is_err());
    }

    #[test]
    fn patterns() {
        assert!(pattern_matches("Mesh*", "Mesh_10_0_0_2"));
        assert!(pattern_matches("*_port_?790", "Global_10_0_0_9_port_1790"));
        assert!(!pattern_matches("Mesh?", "Mesh_10"));
        assert!(pattern_matches("*", ""));
        assert!(pattern_matches("a*b*c", "aXXbYYc"));
        assert!(!pattern_matches("a*b*c", "aXXbYY"));
        let hostile = "*a".repeat(2000);
        assert!(!pattern_matches(&hostile, &"a".repeat(100)));
    }
}
