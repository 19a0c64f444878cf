//! BGP messages out of a pcap: `tshark -q -z follow,tcp,raw,<stream>` reassembles each TCP
//! stream (retransmissions removed, segments in order) and prints each direction's data;
//! the bytes are then split into messages by the 19-byte header's length field, so several
//! messages in one segment and messages spanning segments are both handled.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::netns::run_command;

/// One direction of one TCP connection on port 179, as complete BGP messages in order.
#[derive(Debug, Clone)]
pub struct Flow {
    /// tshark's `tcp.stream` number.
    pub stream: u32,
    /// Sending end.
    pub sender: SocketAddr,
    /// Receiving end.
    pub receiver: SocketAddr,
    /// Complete messages (header included), in the order sent.
    pub messages: Vec<Vec<u8>>,
    /// Bytes at the end of the direction that did not form a complete message (a capture
    /// stopped mid-message); not part of `messages`.
    pub trailing: usize,
}

/// Splits a byte stream into BGP messages. Returns the complete messages and the number of
/// bytes left over at the end (an incomplete last message). Fails on a bad marker or a
/// length below 19, since the stream cannot be framed past that point.
pub fn split_messages(bytes: &[u8]) -> Result<(Vec<Vec<u8>>, usize)> {
    let mut messages = Vec::new();
    let mut rest = bytes;
    while rest.len() >= 19 {
        let (marker, after) = rest.split_at(16);
        if marker.iter().any(|b| *b != 0xff) {
            bail!(
                "no BGP marker at offset {} of the stream",
                bytes.len() - rest.len()
            );
        }
        let length = usize::from(u16::from_be_bytes([after[0], after[1]]));
        if length < 19 {
            bail!(
                "BGP length {length} below 19 at offset {}",
                bytes.len() - rest.len()
            );
        }
        if rest.len() < length {
            break;
        }
        let (message, tail) = rest.split_at(length);
        messages.push(message.to_vec());
        rest = tail;
    }
    Ok((messages, rest.len()))
}

fn decode_hex(line: &str) -> Result<Vec<u8>> {
    let line = line.trim();
    if !line.len().is_multiple_of(2) {
        bail!("odd hex line from tshark: {line}");
    }
    (0..line.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(line.get(i..i + 2).unwrap_or(""), 16)
                .with_context(|| format!("bad hex from tshark: {line}"))
        })
        .collect()
}

fn tshark(args: &[&str]) -> Result<String> {
    let mut command = Command::new("tshark");
    command.args(args);
    Ok(String::from_utf8_lossy(&run_command(command)?.stdout).into_owned())
}

/// The TCP stream numbers of connections to or from port 179 in `pcap`.
pub fn bgp_streams(pcap: &Path) -> Result<Vec<u32>> {
    let path = pcap.to_str().context("pcap path")?;
    let out = tshark(&[
        "-r",
        path,
        "-Y",
        "tcp.port == 179",
        "-T",
        "fields",
        "-e",
        "tcp.stream",
    ])?;
    let mut streams: Vec<u32> = out.lines().filter_map(|l| l.trim().parse().ok()).collect();
    streams.sort_unstable();
    streams.dedup();
    Ok(streams)
}

/// Every direction of every BGP connection in `pcap` that carried data, as messages.
pub fn bgp_flows(pcap: &Path) -> Result<Vec<Flow>> {
    let path = pcap.to_str().context("pcap path")?;
    let streams = bgp_streams(pcap)?;
    if streams.is_empty() {
        return Ok(Vec::new());
    }
    let follow: Vec<String> = streams
        .iter()
        .map(|s| format!("follow,tcp,raw,{s}"))
        .collect();
    let mut args = vec!["-r", path, "-q"];
    for f in &follow {
        args.push("-z");
        args.push(f);
    }
    let out = tshark(&args)?;
    parse_follow_output(&out)
}

/// An endpoint as tshark prints it: `10.0.0.1:179`, `[fd00::1]:179` or `fd00::1:179`.
fn parse_endpoint(text: &str) -> Result<SocketAddr> {
    let text = text.trim();
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    let (ip, port) = text
        .rsplit_once(':')
        .with_context(|| format!("endpoint without port: {text}"))?;
    let ip: std::net::IpAddr = ip
        .trim_matches(|c| c == '[' || c == ']')
        .parse()
        .with_context(|| format!("bad endpoint address: {text}"))?;
    Ok(SocketAddr::new(
        ip,
        port.parse().context("bad endpoint port")?,
    ))
}

/// Parses the output of one or more `-z follow,tcp,raw,N`: a block per stream with
/// `Filter: tcp.stream eq N`, `Node 0: addr:port`, `Node 1: addr:port`, then hex lines, those
/// sent by node 1 indented with a tab.
pub fn parse_follow_output(out: &str) -> Result<Vec<Flow>> {
    struct Block {
        stream: u32,
        nodes: [Option<SocketAddr>; 2],
        data: [Vec<u8>; 2],
    }
    let mut blocks: Vec<Block> = Vec::new();
    for line in out.lines() {
        if let Some(stream) = line.strip_prefix("Filter: tcp.stream eq ") {
            blocks.push(Block {
                stream: stream.trim().parse().context("stream number")?,
                nodes: [None, None],
                data: [Vec::new(), Vec::new()],
            });
            continue;
        }
        let Some(block) = blocks.last_mut() else {
            continue;
        };
        if let Some(addr) = line.strip_prefix("Node 0: ") {
            block.nodes[0] = Some(parse_endpoint(addr)?);
        } else if let Some(addr) = line.strip_prefix("Node 1: ") {
            block.nodes[1] = Some(parse_endpoint(addr)?);
        } else if line.starts_with('=') || line.starts_with("Follow:") || line.trim().is_empty() {
            continue;
        } else if let Some(hex) = line.strip_prefix('\t') {
            block.data[1].extend(decode_hex(hex)?);
        } else {
            block.data[0].extend(decode_hex(line)?);
        }
    }
    let mut flows = Vec::new();
    for block in blocks {
        let (Some(node0), Some(node1)) = (block.nodes[0], block.nodes[1]) else {
            continue;
        };
        for (index, data) in block.data.iter().enumerate() {
            if data.is_empty() {
                continue;
            }
            let (sender, receiver) = if index == 0 {
                (node0, node1)
            } else {
                (node1, node0)
            };
            let (messages, trailing) = split_messages(data)
                .with_context(|| format!("stream {} from {sender}", block.stream))?;
            flows.push(Flow {
                stream: block.stream,
                sender,
                receiver,
                messages,
                trailing,
            });
        }
    }
    Ok(flows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keepalive() -> Vec<u8> {
        let mut m = vec![0xff; 16];
        m.extend([0, 19, 4]);
        m
    }

    #[test]
    fn splits_several_messages_and_keeps_a_partial_tail() {
        let mut bytes = keepalive();
        bytes.extend(keepalive());
        bytes.extend(&keepalive()[..10]);
        let (messages, trailing) = split_messages(&bytes).unwrap();
        assert_eq!(messages, vec![keepalive(), keepalive()]);
        assert_eq!(trailing, 10);
    }

    #[test]
    fn rejects_a_bad_marker() {
        let mut bytes = keepalive();
        bytes[3] = 0;
        assert!(
            split_messages(&bytes)
                .unwrap_err()
                .to_string()
                .contains("marker")
        );
    }

    #[test]
    fn reassembles_messages_spanning_lines_per_direction() {
        let hex: String = keepalive().iter().map(|b| format!("{b:02x}")).collect();
        let (a, b) = hex.split_at(20);
        let out = format!(
            "\n===\nFollow: tcp,raw\nFilter: tcp.stream eq 7\nNode 0: 10.0.0.1:40000\n\
             Node 1: 10.0.0.2:179\n{a}\n\t{hex}\n{b}\n===\n"
        );
        let flows = parse_follow_output(&out).unwrap();
        assert_eq!(flows.len(), 2);
        assert_eq!(flows[0].sender, "10.0.0.1:40000".parse().unwrap());
        assert_eq!(flows[0].messages, vec![keepalive()]);
        assert_eq!(flows[1].sender, "10.0.0.2:179".parse().unwrap());
        assert_eq!(flows[1].stream, 7);
    }
}
