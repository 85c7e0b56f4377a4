//! How a cluster forms: every process listens on its address, connects to the processes before
//! it and accepts those after it (as timely does), with a handshake that refuses a process of
//! another cluster size or generation, and a deadline instead of timely's endless retries.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// The handshake's marker and version.
const HELLO: [u8; 8] = *b"WEIRCL01";
const ACCEPTED: u8 = 1;
const REFUSED: u8 = 0;

/// Where this process is in the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// This process's index into `addresses`.
    pub process: usize,
    /// Every process's `host:port`, the same list in every process.
    pub addresses: Vec<String>,
    /// The cluster's generation: a supervisor bumps it at every restart, and a process of
    /// another generation is refused at the handshake (a straggler of an old cluster).
    pub generation: u64,
    /// How long to wait for every other process to connect.
    pub connect_timeout: Duration,
}

impl ClusterConfig {
    /// Process `process` of the cluster at `addresses`, generation 0, waiting up to 30 s for
    /// the others.
    pub fn new(process: usize, addresses: Vec<String>) -> Self {
        ClusterConfig {
            process,
            addresses,
            generation: 0,
            connect_timeout: Duration::from_secs(30),
        }
    }

    /// Sets the generation.
    pub fn generation(mut self, generation: u64) -> Self {
        self.generation = generation;
        self
    }

    /// Sets how long to wait for the other processes.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    fn validate(&self) -> Result<(), ClusterError> {
        if self.process >= self.addresses.len() {
            return Err(ClusterError::Config(format!(
                "process index {} is not below the number of addresses ({}); give every \
                 process the same address list and an index into it",
                self.process,
                self.addresses.len()
            )));
        }
        if u32::try_from(self.addresses.len()).is_err() {
            return Err(ClusterError::Config("too many processes".into()));
        }
        Ok(())
    }
}

/// Why a cluster could not form or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// The configuration is invalid.
    #[error("invalid cluster configuration: {0}")]
    Config(String),
    /// This process cannot listen on its address.
    #[error(
        "process {process} cannot listen on {address}: {source}; is another process (perhaps of \
         an old generation) still using the port?"
    )]
    Bind {
        /// This process.
        process: usize,
        /// Its address.
        address: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Not every process connected in time.
    #[error(
        "process {process}: the cluster did not form within {timeout:?}, no connection with \
         process(es) {missing:?}; start every process with the same address list"
    )]
    Timeout {
        /// This process.
        process: usize,
        /// How long it waited.
        timeout: Duration,
        /// Processes it has no connection with.
        missing: Vec<usize>,
    },
    /// Another process refused this one at the handshake.
    #[error(
        "process {process} was refused by process {peer}: it belongs to another cluster size or \
         generation; restart it with the cluster's current settings"
    )]
    Refused {
        /// This process.
        process: usize,
        /// The process that refused it.
        peer: usize,
    },
    /// A socket operation failed while the cluster formed.
    #[error("process {process}: {context}: {source}")]
    Io {
        /// This process.
        process: usize,
        /// What it was doing.
        context: String,
        /// Why it failed.
        #[source]
        source: io::Error,
    },
    /// The cluster stopped working (a connection broke, a process died).
    #[error("{0}")]
    Failed(String),
}

fn hello(config: &ClusterConfig, process: usize) -> [u8; 28] {
    let mut bytes = [0; 28];
    bytes[..8].copy_from_slice(&HELLO);
    bytes[8..12].copy_from_slice(&(config.addresses.len() as u32).to_be_bytes());
    bytes[12..16].copy_from_slice(&(process as u32).to_be_bytes());
    bytes[16..24].copy_from_slice(&config.generation.to_be_bytes());
    bytes
}

/// The peer index a hello announces, if it is of this cluster.
fn check_hello(config: &ClusterConfig, bytes: &[u8; 28]) -> Option<usize> {
    let n = u32::from_be_bytes(bytes[8..12].try_into().ok()?) as usize;
    let peer = u32::from_be_bytes(bytes[12..16].try_into().ok()?) as usize;
    let generation = u64::from_be_bytes(bytes[16..24].try_into().ok()?);
    (bytes[..8] == HELLO
        && n == config.addresses.len()
        && generation == config.generation
        && peer > config.process
        && peer < n)
        .then_some(peer)
}

fn resolve(config: &ClusterConfig, peer: usize) -> Result<SocketAddr, ClusterError> {
    let address = config.addresses.get(peer).map_or("", String::as_str);
    address
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| {
            ClusterError::Config(format!(
                "the address of process {peer}, `{address}`, is no host:port"
            ))
        })
}

/// Connects to every other process; the result holds a stream per process (`None` for this
/// one), ready for timely.
pub(crate) fn form(config: &ClusterConfig) -> Result<Vec<Option<TcpStream>>, ClusterError> {
    config.validate()?;
    let me = config.process;
    let io = |context: &str| {
        let context = context.to_owned();
        move |source| ClusterError::Io {
            process: me,
            context,
            source,
        }
    };
    let address = config.addresses.get(me).cloned().unwrap_or_default();
    let listener =
        TcpListener::bind(resolve(config, me)?).map_err(|source| ClusterError::Bind {
            process: me,
            address,
            source,
        })?;
    listener
        .set_nonblocking(true)
        .map_err(io("setting the listener non-blocking"))?;
    let deadline = Instant::now() + config.connect_timeout;
    let timeout = |missing: Vec<usize>| ClusterError::Timeout {
        process: me,
        timeout: config.connect_timeout,
        missing,
    };
    let mut sockets: Vec<Option<TcpStream>> = (0..config.addresses.len()).map(|_| None).collect();
    for (peer, socket) in sockets.iter_mut().enumerate().take(me) {
        let to = resolve(config, peer)?;
        let mut stream = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(timeout((peer..me).collect()));
            }
            match TcpStream::connect_timeout(&to, left.min(Duration::from_secs(1))) {
                Ok(stream) => break stream,
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        let left = deadline.saturating_duration_since(Instant::now());
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .map_err(io("setting a read timeout"))?;
        stream
            .write_all(&hello(config, me))
            .map_err(io(&format!("greeting process {peer}")))?;
        let mut answer = [REFUSED];
        match stream.read_exact(&mut answer) {
            Ok(()) if answer == [ACCEPTED] => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(timeout(vec![peer]));
            }
            _ => return Err(ClusterError::Refused { process: me, peer }),
        }
        *socket = Some(ready(stream).map_err(io("preparing a connection"))?);
    }
    while sockets.iter().skip(me + 1).any(Option::is_none) {
        match listener.accept() {
            Ok((stream, _)) => {
                if let Some((peer, stream)) = greet(config, stream, deadline) {
                    if sockets[peer].is_none() {
                        sockets[peer] = Some(ready(stream).map_err(io("preparing a connection"))?);
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    let missing = (me + 1..sockets.len())
                        .filter(|p| sockets[*p].is_none())
                        .collect();
                    return Err(timeout(missing));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(io("accepting a connection")(e)),
        }
    }
    Ok(sockets)
}

/// Reads a connecting process's hello and answers it; the peer's index and the stream when it
/// belongs to this cluster (anything else is refused and dropped, and waiting goes on).
fn greet(
    config: &ClusterConfig,
    mut stream: TcpStream,
    deadline: Instant,
) -> Option<(usize, TcpStream)> {
    let left = deadline.saturating_duration_since(Instant::now());
    stream.set_nonblocking(false).ok()?;
    stream
        .set_read_timeout(Some(left.max(Duration::from_millis(1))))
        .ok()?;
    let mut bytes = [0; 28];
    stream.read_exact(&mut bytes).ok()?;
    match check_hello(config, &bytes) {
        Some(peer) => {
            stream.write_all(&[ACCEPTED]).ok()?;
            Some((peer, stream))
        }
        None => {
            tracing::warn!(
                "process {} refused a connection that is not of this cluster (size {}, \
                 generation {})",
                config.process,
                config.addresses.len(),
                config.generation
            );
            let _ = stream.write_all(&[REFUSED]);
            None
        }
    }
}

/// A handshaken stream, as timely wants it: blocking, no timeouts, no delay.
fn ready(stream: TcpStream) -> io::Result<TcpStream> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(None)?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hello_of_another_size_or_generation_is_refused() {
        let config =
            ClusterConfig::new(0, vec!["a:1".into(), "b:1".into(), "c:1".into()]).generation(4);
        let of = |process, n: usize, generation| {
            let other = ClusterConfig::new(process, vec!["x:1".into(); n]).generation(generation);
            hello(&other, process)
        };
        assert_eq!(check_hello(&config, &of(2, 3, 4)), Some(2));
        assert_eq!(check_hello(&config, &of(2, 3, 3)), None, "old generation");
        assert_eq!(check_hello(&config, &of(2, 4, 4)), None, "other size");
        assert_eq!(
            check_hello(&config, &of(0, 3, 4)),
            None,
            "not after this one"
        );
        let mut garbage = of(1, 3, 4);
        garbage[0] = b'X';
        assert_eq!(check_hello(&config, &garbage), None);
    }

    #[test]
    fn an_index_outside_the_addresses_is_refused() {
        let err = form(&ClusterConfig::new(2, vec!["127.0.0.1:1".into()])).err();
        assert!(
            err.as_ref()
                .is_some_and(|e| e.to_string().contains("process index 2 is not below")),
            "{err:?}"
        );
    }
}
