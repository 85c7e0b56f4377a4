//! A Kafka protocol probe: one `ApiVersions` (v0) request over a plain TCP connection.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

const API_VERSIONS: i16 = 18;

/// Sends `ApiVersions` v0 and returns how many APIs the broker lists. Fails on a protocol-level
/// error code, a wrong correlation id or a malformed answer.
pub fn api_versions(addr: SocketAddr, timeout: Duration) -> std::io::Result<usize> {
    let invalid = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidData, what);
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let correlation: i32 = 0x5745_4952; // "WEIR"
    let client = b"weir-testkit";
    let mut body = Vec::new();
    body.extend_from_slice(&API_VERSIONS.to_be_bytes());
    body.extend_from_slice(&0_i16.to_be_bytes());
    body.extend_from_slice(&correlation.to_be_bytes());
    body.extend_from_slice(&(client.len() as i16).to_be_bytes());
    body.extend_from_slice(client);
    let mut request = (body.len() as i32).to_be_bytes().to_vec();
    request.extend_from_slice(&body);
    stream.write_all(&request)?;
    let mut size = [0u8; 4];
    stream.read_exact(&mut size)?;
    let size = i32::from_be_bytes(size);
    if !(10..=1 << 20).contains(&size) {
        return Err(invalid(format!("ApiVersions response of {size} bytes")));
    }
    let mut response = vec![0u8; size as usize];
    stream.read_exact(&mut response)?;
    let field = |at: usize, n: usize| response.get(at..at + n).unwrap_or_default().to_vec();
    let read_i32 = |at: usize| {
        let b = field(at, 4);
        <[u8; 4]>::try_from(b.as_slice()).map(i32::from_be_bytes)
    };
    let got = read_i32(0).map_err(|_| invalid("short response".into()))?;
    if got != correlation {
        return Err(invalid(format!("correlation id {got}, sent {correlation}")));
    }
    let error = <[u8; 2]>::try_from(field(4, 2).as_slice())
        .map(i16::from_be_bytes)
        .map_err(|_| invalid("short response".into()))?;
    if error != 0 {
        return Err(invalid(format!("ApiVersions error code {error}")));
    }
    let count = read_i32(6).map_err(|_| invalid("short response".into()))?;
    usize::try_from(count).map_err(|_| invalid(format!("{count} APIs")))
}
