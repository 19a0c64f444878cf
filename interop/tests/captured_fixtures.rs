//! Checks the captured golden vectors in `fixtures/messages/captured/` (no root needed): each
//! file has its `# source:` and `# context:` lines, its hex is exactly one complete BGP
//! message, and its name matches what the message is.

use interop::capture::{DecodeContext, captured_fixtures_dir, describe};

fn parse_context(line: &str) -> DecodeContext {
    let mut context = DecodeContext {
        four_octet_as: true,
        add_path: Vec::new(),
        extended_message: false,
    };
    for pair in line.split_whitespace() {
        let (key, value) = pair.split_once('=').expect("key=value");
        match key {
            "four_octet_as" => context.four_octet_as = value.parse().expect("bool"),
            "extended_message" => context.extended_message = value.parse().expect("bool"),
            "add_path" => {
                for family in value.split(',') {
                    context.add_path.push(match family {
                        "ipv4-unicast" => "ipv4-unicast",
                        "ipv6-unicast" => "ipv6-unicast",
                        other => panic!("unknown add_path family {other}"),
                    });
                }
            }
            other => panic!("unknown context key {other}"),
        }
    }
    context
}

#[test]
fn captured_vectors_are_single_complete_messages_named_after_their_content() {
    let dir = captured_fixtures_dir();
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).expect("fixtures/messages/captured exists") {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "hex") {
            continue;
        }
        count += 1;
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.file_stem().unwrap().to_str().unwrap();
        assert!(
            text.lines().any(|l| l.starts_with("# source: ")),
            "{name}: no source line"
        );
        let context_line = text
            .lines()
            .find_map(|l| l.strip_prefix("# context: "))
            .unwrap_or_else(|| panic!("{name}: no context line"));
        let context = parse_context(context_line);
        let hex: String = text.lines().filter(|l| !l.starts_with('#')).collect();
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        assert!(bytes.len() >= 19, "{name}: shorter than a header");
        assert!(bytes[..16].iter().all(|b| *b == 0xff), "{name}: bad marker");
        let length = usize::from(u16::from_be_bytes([bytes[16], bytes[17]]));
        assert_eq!(length, bytes.len(), "{name}: length field vs bytes");
        let (sender, kind) = name.split_once('-').unwrap();
        assert!(["bird", "gobgp", "frr"].contains(&sender), "{name}: sender");
        let described =
            describe(&bytes, &context).unwrap_or_else(|| panic!("{name}: not a message"));
        if described == "open" {
            assert!(kind.starts_with("open-to-"), "{name}: is an OPEN");
        } else {
            assert_eq!(kind, described, "{name}: content says {described}");
        }
    }
    assert!(
        count >= 30,
        "only {count} captured vectors in {}",
        dir.display()
    );
}
