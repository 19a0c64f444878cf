//! The node's interface addresses, from a netlink address dump every few seconds: the daemon
//! checks with them that the Node resource's BGP addresses are local.

use std::net::IpAddr;
use std::time::Duration;

use futures::TryStreamExt;
use rtnetlink::packet_route::address::AddressAttribute;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How often the addresses are read again.
pub const ADDRESS_POLL: Duration = Duration::from_secs(5);

/// Every address on this network namespace's interfaces (`IFA_LOCAL` and `IFA_ADDRESS`),
/// sorted and without duplicates.
pub async fn local_addresses() -> std::io::Result<Vec<IpAddr>> {
    let (connection, handle, _) = rtnetlink::new_connection()?;
    let connection = tokio::spawn(connection);
    let mut dump = handle.address().get().execute();
    let mut out = Vec::new();
    let result = loop {
        match dump.try_next().await {
            Ok(Some(message)) => out.extend(message.attributes.iter().filter_map(|a| match a {
                AddressAttribute::Address(ip) | AddressAttribute::Local(ip) => Some(*ip),
                _ => None,
            })),
            Ok(None) => break Ok(()),
            Err(e) => break Err(std::io::Error::other(e.to_string())),
        }
    };
    connection.abort();
    result?;
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// Publishes [`local_addresses`] into `tx` at start and every [`ADDRESS_POLL`] until
/// `shutdown`; a failed dump keeps the last list (and is logged at debug level).
pub async fn watch_local_addresses(
    tx: watch::Sender<Option<Vec<IpAddr>>>,
    shutdown: CancellationToken,
) {
    loop {
        match local_addresses().await {
            Ok(addresses) => {
                tx.send_if_modified(|current| {
                    let changed = current.as_ref() != Some(&addresses);
                    if changed {
                        *current = Some(addresses);
                    }
                    changed
                });
            }
            Err(error) => tracing::debug!(%error, "interface addresses unreadable"),
        }
        tokio::select! {
            _ = tokio::time::sleep(ADDRESS_POLL) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}
