//! Timely panics when a connection breaks (its network threads, and then any thread that touches
//! the poisoned queues). A panic hook keeps those panics from printing crash reports: it records
//! their messages, and the transport turns them into one clear error.

use std::sync::{Mutex, Once};

use crate::transport::lock;

/// The name of the thread that owns timely's allocator.
pub(crate) const COMM_THREAD: &str = "weir-cluster-comm";

static RECORDED: Mutex<Vec<String>> = Mutex::new(Vec::new());
static INSTALL: Once = Once::new();

/// Whether a panic on thread `name` is one of timely's, contained by the transport.
fn contained(name: &str) -> bool {
    name.starts_with("timely:") || name.starts_with(COMM_THREAD)
}

/// Installs the hook once per process; panics elsewhere go to the hook that was there before.
pub(crate) fn install_hook() {
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let thread = std::thread::current();
            let name = thread.name().unwrap_or_default();
            if contained(name) {
                let payload = info.payload();
                let message = payload
                    .downcast_ref::<&str>()
                    .copied()
                    .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                    .unwrap_or("a panic without a message");
                lock(&RECORDED).push(format!("{name}: {message}"));
                return;
            }
            previous(info);
        }));
    });
}

/// Timely's thread names (`timely:recv-2`) as what they are (`the connection from process 2`).
fn readable(recorded: &str) -> String {
    let (name, message) = recorded.split_once(": ").unwrap_or((recorded, ""));
    let peer = |prefix: &str| name.strip_prefix(prefix).map(str::to_owned);
    let what = if let Some(p) = peer("timely:recv-") {
        format!("the connection from process {p}")
    } else if let Some(p) = peer("timely:send-") {
        format!("the connection to process {p}")
    } else {
        name.to_owned()
    };
    format!("{what}: {message}")
}

/// Why the transport failed while `during`, from the panics recorded so far (timely's network
/// threads first: they name the peer).
pub(crate) fn describe(during: &str) -> String {
    let recorded = lock(&RECORDED);
    let mut causes: Vec<String> = recorded
        .iter()
        .filter(|m| m.starts_with("timely:"))
        .map(|m| readable(m))
        .collect();
    if causes.is_empty() {
        causes.extend(recorded.iter().map(|m| readable(m)));
    }
    causes.dedup();
    let causes = if causes.is_empty() {
        "an unknown panic".to_owned()
    } else {
        causes.join("; ")
    };
    format!(
        "the cluster's connections failed while {during} ({causes}); a cluster fate-shares, so \
         every process stops and the cluster must be started again"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timely_threads_are_named_by_their_peer() {
        assert_eq!(
            readable("timely:recv-2: timely communication error: reading data: socket closed"),
            "the connection from process 2: timely communication error: reading data: socket closed"
        );
        assert_eq!(
            readable("timely:send-0: broken pipe"),
            "the connection to process 0: broken pipe"
        );
        assert!(contained("timely:send-1") && contained(COMM_THREAD) && !contained("main"));
    }
}
