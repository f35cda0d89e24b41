//! The live alert stream: server-sent events, one `alert` event per
//! alert, first the last alerts kept, then each as it fires.
//!
//! The stream reads on through the hub's ring at its own pace; it never
//! holds up the publisher. When it is a whole ring behind (the client
//! does not read, or reads slower than alerts fire), it gets one
//! `dropped` event saying how many alerts it missed, and the stream ends
//! (the browser reconnects and starts over from the alerts kept).

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Bytes, Frame, SizeHint};

use super::hub::{Hub, Read};

/// A comment line every this often keeps proxies from closing an idle
/// stream, and lets a vanished client be noticed.
const HEARTBEAT: Duration = Duration::from_secs(15);

/// Counts a live client for as long as its stream exists.
pub struct ClientSlot(Arc<AtomicUsize>);

impl ClientSlot {
    /// Takes a slot if fewer than `max` are taken.
    pub fn take(count: &Arc<AtomicUsize>, max: usize) -> Option<ClientSlot> {
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| ClientSlot(Arc::clone(count)))
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

pub struct AlertStream {
    hub: Arc<Hub>,
    client: u64,
    next: u64,
    preface: Option<Bytes>,
    heartbeat: tokio::time::Interval,
    ended: bool,
    _slot: ClientSlot,
}

impl AlertStream {
    pub fn new(hub: Arc<Hub>, slot: ClientSlot) -> AlertStream {
        let (client, next) = hub.subscribe();
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        AlertStream {
            hub,
            client,
            next,
            // Sent first: the browser learns the stream is open at once.
            preface: Some(Bytes::from_static(b"retry: 2000\n: peregrine console\n\n")),
            heartbeat,
            ended: false,
            _slot: slot,
        }
    }
}

impl Drop for AlertStream {
    fn drop(&mut self) {
        self.hub.leave(self.client);
    }
}

impl Body for AlertStream {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(preface) = self.preface.take() {
            return Poll::Ready(Some(Ok(Frame::data(preface))));
        }
        if self.ended {
            return Poll::Ready(None);
        }
        match self.hub.read(self.client, self.next, cx.waker()) {
            Read::Frames(frames, next) => {
                self.next = next;
                return Poll::Ready(Some(Ok(Frame::data(frames))));
            }
            Read::Behind(missed) => {
                self.ended = true;
                let frame = format!("event: dropped\ndata: {{\"missed\":{missed}}}\n\n");
                return Poll::Ready(Some(Ok(Frame::data(Bytes::from(frame)))));
            }
            Read::Waiting => {}
        }
        if self.heartbeat.poll_tick(cx).is_ready() {
            return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b": beat\n\n")))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.ended && self.preface.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
