//! One TCP connection of a peer task: a reader task and a writer task around the socket halves,
//! so that the peer task never blocks on a socket and a slow peer never holds up anything else.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Notify, mpsc};
use tokio::task::AbortHandle;

use crate::session::ConnId;

use super::counters::{MessageCounters, OutputCounters};

/// Size of one socket read.
const READ_CHUNK: usize = 64 * 1024;
/// A write that makes no progress for this long is reported as stalled (RFC 9687 send hold
/// timer input); the session decides when to give up.
const STALL_AFTER: Duration = Duration::from_secs(1);
/// How long a closing connection may take to flush its last messages (a NOTIFICATION).
const CLOSE_FLUSH: Duration = Duration::from_secs(5);

/// What a connection reports to its peer task.
#[derive(Debug)]
pub(crate) enum ConnEvent {
    /// Bytes read.
    Data(ConnId, Bytes),
    /// EOF, reset or a read/write error.
    Closed(ConnId),
    /// A write has made no progress for a while.
    WriteStalled(ConnId),
    /// The stalled write progressed.
    WriteResumed(ConnId),
}

enum WriterMsg {
    /// Bytes to write; UPDATE output also carries its NLRI count and its session's counters.
    Data(Bytes, Option<(u64, Arc<OutputCounters>)>),
    Close,
}

/// The peer task's handle on one connection.
pub(crate) struct Conn {
    writer: mpsc::UnboundedSender<WriterMsg>,
    reader: AbortHandle,
    writer_task: AbortHandle,
    /// Bytes handed to the writer and not yet written.
    queued: Arc<AtomicUsize>,
    local: Option<SocketAddr>,
    remote: Option<SocketAddr>,
}

impl Conn {
    /// Starts the reader and writer tasks for `stream`.
    /// `written` is notified whenever queued bytes have been written (the peer task then takes
    /// more from its outbound queue).
    pub(crate) fn spawn(
        id: ConnId,
        stream: TcpStream,
        events: mpsc::Sender<ConnEvent>,
        written: Arc<Notify>,
        messages: Arc<MessageCounters>,
    ) -> Conn {
        let local = stream.local_addr().ok();
        let remote = stream.peer_addr().ok();
        let (read, write) = stream.into_split();
        let queued = Arc::new(AtomicUsize::new(0));
        let (writer, rx) = mpsc::unbounded_channel();
        let writer_task = tokio::spawn(write_loop(
            id,
            write,
            rx,
            queued.clone(),
            events.clone(),
            written,
            messages,
        ))
        .abort_handle();
        let reader = tokio::spawn(read_loop(id, read, events)).abort_handle();
        Conn {
            writer,
            reader,
            writer_task,
            queued,
            local,
            remote,
        }
    }

    /// Queues bytes for writing (never blocks; the caller bounds what it queues with
    /// [`Conn::queued`]).
    pub(crate) fn send(&self, bytes: Bytes) {
        self.queued.fetch_add(bytes.len(), Ordering::Relaxed);
        let _ = self.writer.send(WriterMsg::Data(bytes, None));
    }

    /// Queues UPDATE output carrying `prefixes` NLRI: once written, it is counted in `output`.
    pub(crate) fn send_output(&self, bytes: Bytes, prefixes: u64, output: Arc<OutputCounters>) {
        self.queued.fetch_add(bytes.len(), Ordering::Relaxed);
        let _ = self
            .writer
            .send(WriterMsg::Data(bytes, Some((prefixes, output))));
    }

    /// Our end of the connection.
    pub(crate) fn local_addr(&self) -> Option<SocketAddr> {
        self.local
    }

    /// The peer's end of the connection.
    pub(crate) fn peer_addr(&self) -> Option<SocketAddr> {
        self.remote
    }

    /// Bytes queued and not yet written.
    pub(crate) fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Stops reading at once; writes what was queued (bounded in time), then closes.
    pub(crate) fn close(self) {
        self.reader.abort();
        let _ = self.writer.send(WriterMsg::Close);
        // A peer that does not read cannot hold the socket open: drop it after a bound.
        let writer_task = self.writer_task;
        tokio::spawn(async move {
            tokio::time::sleep(CLOSE_FLUSH).await;
            writer_task.abort();
        });
    }
}

async fn read_loop(id: ConnId, mut read: OwnedReadHalf, events: mpsc::Sender<ConnEvent>) {
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    loop {
        buf.reserve(READ_CHUNK);
        match read.read_buf(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = events.send(ConnEvent::Closed(id)).await;
                return;
            }
            Ok(_) => {
                // Awaiting here is the inbound back-pressure: while the peer task does not take
                // the data, this connection is not read and TCP slows the sender down.
                if events
                    .send(ConnEvent::Data(id, buf.split().freeze()))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

async fn write_loop(
    id: ConnId,
    mut write: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<WriterMsg>,
    queued: Arc<AtomicUsize>,
    events: mpsc::Sender<ConnEvent>,
    written: Arc<Notify>,
    messages: Arc<MessageCounters>,
) {
    while let Some(msg) = rx.recv().await {
        match msg {
            WriterMsg::Data(bytes, output) => {
                let len = bytes.len();
                let mut write_fut = std::pin::pin!(write.write_all(&bytes));
                let result = match tokio::time::timeout(STALL_AFTER, &mut write_fut).await {
                    Ok(result) => result,
                    Err(_) => {
                        let _ = events.send(ConnEvent::WriteStalled(id)).await;
                        let result = write_fut.await;
                        let _ = events.send(ConnEvent::WriteResumed(id)).await;
                        result
                    }
                };
                queued.fetch_sub(len, Ordering::Relaxed);
                written.notify_one();
                if result.is_err() {
                    let _ = events.send(ConnEvent::Closed(id)).await;
                    return;
                }
                // Counted once written, not when queued: a peer that stops reading shows
                // nothing sent beyond what reached the socket.
                messages.count_sent(&bytes);
                if let Some((prefixes, output)) = output {
                    output.written(prefixes, len as u64);
                }
            }
            WriterMsg::Close => {
                // Everything queued before the close request (a NOTIFICATION) is written by
                // now; Conn::close bounds how long that may take.
                let _ = write.shutdown().await;
                return;
            }
        }
    }
}
