//! Turning packet captures into BGP messages: TCP streams reassembled per direction by
//! tshark, split into messages by the BGP length field, described by a minimal classifier
//! (enough to name a message and compute the receiver's decode context), and written as hex
//! fixture files for the codec's golden tests.

pub mod classify;
pub mod fixtures;
pub mod pcap;

pub use classify::{DecodeContext, OpenSummary, describe};
pub use fixtures::{FixtureVector, captured_fixtures_dir, write_vector};
pub use pcap::{Flow, bgp_flows, split_messages};
