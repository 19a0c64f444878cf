//! Decodes a stream of BGP messages given as hex on stdin (whitespace and `#` comment lines
//! ignored), prints each message and checks that it re-encodes byte for byte.
//!
//! ```text
//! cargo run -p bgp-proto --example decode [--two-octet-as] [--add-path ipv4-unicast,..] < stream.hex
//! ```

use bgp_proto::{AddPathFamilies, Context, Family, Header, Message};

fn main() {
    let mut ctx = Context::default();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--two-octet-as" => ctx.four_octet_as = false,
            "--extended-message" => ctx.extended_message = true,
            "--add-path" => {
                i += 1;
                let families: Vec<Family> = args
                    .get(i)
                    .map(|s| s.split(',').map(|f| f.parse().expect("family")).collect())
                    .unwrap_or_default();
                ctx.add_path = AddPathFamilies::of(&families);
            }
            other => {
                eprintln!("unknown argument {other}");
                std::process::exit(2);
            }
        }
        i += 1;
    }
    let input = std::io::read_to_string(std::io::stdin()).expect("stdin");
    let digits: String = input
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(|l| l.chars())
        .filter(|c| !c.is_whitespace())
        .collect();
    let bytes: Vec<u8> = (0..digits.len() / 2)
        .map(|i| u8::from_str_radix(&digits[2 * i..2 * i + 2], 16).expect("hex"))
        .collect();
    let mut rest = bytes.as_slice();
    let mut failed = false;
    while !rest.is_empty() {
        let header = match Header::decode(rest, &ctx) {
            Ok(Some(h)) => h,
            Ok(None) => {
                eprintln!("{} trailing octets", rest.len());
                std::process::exit(1);
            }
            Err(e) => {
                eprintln!("header: {e}");
                std::process::exit(1);
            }
        };
        let len = usize::from(header.length).min(rest.len());
        let (one, tail) = rest.split_at(len);
        rest = tail;
        match Message::decode(one, &ctx) {
            Ok(m) => {
                println!("{m:#?}");
                let again = m.to_bytes(&ctx).expect("encode");
                if again.as_ref() != one {
                    failed = true;
                    println!("!! re-encoding differs");
                }
                if let Message::Update(u) = &m
                    && !u.issues.is_empty()
                {
                    println!("!! RFC 7606 issues: {:?}", u.issues);
                }
            }
            Err(e) => {
                failed = true;
                println!("!! {e}");
            }
        }
    }
    std::process::exit(i32::from(failed));
}
