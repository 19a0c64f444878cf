//! The rows of `fixtures/malformed-messages.tsv` and what tern must do with each, "as
//! implemented": the expected treatment comes from `bgp-proto`'s decoder (the codec tern uses),
//! and is cross-checked against the TSV's own words, with the departures that
//! docs/rfc-compliance.md lists.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow, bail};
use bgp_proto::{Context, Message, Rfc7606Action};

use crate::evil::{TYPE_OPEN, message_type, unhex};

/// Path of the TSV in the repository.
pub fn tsv_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/malformed-messages.tsv")
}

/// One row.
#[derive(Debug, Clone)]
pub struct MalformedRow {
    /// Row name, e.g. `upd-origin-3`.
    pub name: String,
    /// The complete message.
    pub bytes: Vec<u8>,
    /// The TSV's expected treatment, in words.
    pub tsv_expectation: String,
}

impl MalformedRow {
    /// `true` for rows that are an OPEN (sent as the OPEN of a fresh connection).
    pub fn is_open(&self) -> bool {
        self.name.starts_with("open-") && message_type(&self.bytes) == Some(TYPE_OPEN)
    }
}

/// Reads every row (comments `#` skipped). Fails naming the line of a broken row.
pub fn load_rows(path: &Path) -> Result<Vec<MalformedRow>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    let mut rows = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split('\t');
        let (Some(name), Some(hex), Some(expectation)) =
            (fields.next(), fields.next(), fields.next())
        else {
            bail!(
                "{}:{}: not three tab-separated fields",
                path.display(),
                index + 1
            );
        };
        rows.push(MalformedRow {
            name: name.to_owned(),
            bytes: unhex(hex).with_context(|| format!("{}:{}", path.display(), index + 1))?,
            tsv_expectation: expectation.to_owned(),
        });
    }
    Ok(rows)
}

/// What the receiving speaker does with a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Treatment {
    /// The session is reset with exactly this NOTIFICATION (complete message bytes).
    Reset(Vec<u8>),
    /// The OPEN is accepted: the session comes up.
    AcceptOpen,
    /// The UPDATE is processed normally (no error; its routes, if any, are installed).
    Accept,
    /// A malformed attribute is discarded; the routes are installed.
    AttributeDiscard,
    /// The announced routes are handled as withdrawn; the session stays up.
    TreatAsWithdraw,
    /// RFC 7606 AFI/SAFI disable: the session layer may disable the family or reset with this
    /// NOTIFICATION; either is accepted, the other family's routes must stay if it is kept up.
    AfiSafiDisableOrReset(Vec<u8>),
}

impl Treatment {
    /// Short name for the result table.
    pub fn label(&self) -> &'static str {
        match self {
            Treatment::Reset(_) => "reset",
            Treatment::AcceptOpen => "accept-open",
            Treatment::Accept => "accept",
            Treatment::AttributeDiscard => "attr-discard",
            Treatment::TreatAsWithdraw => "treat-as-withdraw",
            Treatment::AfiSafiDisableOrReset(_) => "afi-safi-disable|reset",
        }
    }
}

/// The treatment `bgp-proto` decides for `row`, with the context the TSV assumes (4-octet AS).
pub fn codec_treatment(row: &MalformedRow) -> Result<Treatment> {
    let ctx = Context::default();
    let notification_bytes = |n: bgp_proto::Notification| -> Result<Vec<u8>> {
        Ok(Message::Notification(n)
            .to_bytes(&ctx)
            .map_err(|e| anyhow!("encode NOTIFICATION: {e}"))?
            .to_vec())
    };
    match Message::decode(&row.bytes, &ctx) {
        Err(error) => Ok(Treatment::Reset(notification_bytes(error.notification)?)),
        Ok(Message::Open(open)) => match open.validate() {
            Err(error) => Ok(Treatment::Reset(notification_bytes(error.notification)?)),
            Ok(()) => Ok(Treatment::AcceptOpen),
        },
        Ok(Message::Update(update)) => Ok(match update.action() {
            None => Treatment::Accept,
            Some(Rfc7606Action::AttributeDiscard) => Treatment::AttributeDiscard,
            Some(Rfc7606Action::TreatAsWithdraw) => Treatment::TreatAsWithdraw,
            Some(Rfc7606Action::AfiSafiDisable) => {
                let issue = update
                    .issues
                    .iter()
                    .find(|i| i.action == Rfc7606Action::AfiSafiDisable)
                    .ok_or_else(|| anyhow!("AFI/SAFI disable without its issue"))?;
                Treatment::AfiSafiDisableOrReset(notification_bytes(issue.notification.clone())?)
            }
            Some(Rfc7606Action::SessionReset) => {
                bail!("{}: session reset reported as an issue", row.name)
            }
        }),
        Ok(other) => bail!("{}: decodes as {other:?}", row.name),
    }
}

/// The treatment class the TSV's words name (`None` when they name none we check).
pub fn tsv_class(row: &MalformedRow) -> Option<&'static str> {
    let words = row.tsv_expectation.to_ascii_lowercase();
    if words.starts_with("notification") || words.starts_with("session reset or") {
        Some(if words.starts_with("session reset or") {
            "afi-safi-disable|reset"
        } else {
            "reset"
        })
    } else if words.starts_with("session reset") || words.starts_with("rfc 4271: notification") {
        Some("reset")
    } else if words.starts_with("treat-as-withdraw") {
        Some("treat-as-withdraw")
    } else if words.starts_with("attribute discard") || words.starts_with("keep first") {
        Some("attr-discard")
    } else if words.starts_with("accept (") || words.starts_with("accept;") {
        Some(if row.is_open() {
            "accept-open"
        } else {
            "accept"
        })
    } else if words.starts_with("accept")
        || words.starts_with("no routes")
        || words.starts_with("end-of-rib")
    {
        Some("accept")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The codec's decision agrees with the TSV's words for every row (a disagreement must be
    /// a departure listed in docs/rfc-compliance.md, and there is none between classes).
    #[test]
    fn codec_agrees_with_the_tsv_on_every_row() {
        let rows = load_rows(&tsv_path()).unwrap();
        assert!(rows.len() >= 30, "only {} rows", rows.len());
        let mismatches: Vec<String> = rows
            .iter()
            .filter_map(|row| {
                let treatment = codec_treatment(row).unwrap();
                let class = tsv_class(row).unwrap_or("(words not understood)");
                (treatment.label() != class)
                    .then(|| format!("{}: codec {} TSV {class}", row.name, treatment.label()))
            })
            .collect();
        assert!(mismatches.is_empty(), "{mismatches:#?}");
    }
}
