//! What one process sends another inside timely's messages: Weir's frames and the channel
//! protocol around them (credits, closes, goodbyes), all on one timely channel.
//!
//! Layout, integers big-endian: the kind (u8), the channel key (attempt, edge, upstream,
//! downstream: u32 each), then by kind: a frame's bytes (the rest), or a credit count (u64), or
//! nothing.

use std::io::Write;

use timely_bytes::arc::Bytes;
use timely_communication::Bytesable;
use weir_runtime::cluster::ChannelKey;

const KIND_FRAME: u8 = 1;
const KIND_CREDIT: u8 = 2;
const KIND_SENDER_CLOSED: u8 = 3;
const KIND_RECEIVER_CLOSED: u8 = 4;
const KIND_GOODBYE: u8 = 5;

/// The kind and the channel key.
const HEAD_LEN: usize = 1 + 16;

/// One message between two processes.
#[derive(Debug)]
pub(crate) enum Message {
    /// A frame of a channel whose receiver is in the target process.
    Frame(ChannelKey, Vec<u8>),
    /// Credits for a channel whose sender is in the target process.
    Credit(ChannelKey, u64),
    /// The sender of a channel is gone (after every frame it sent).
    SenderClosed(ChannelKey),
    /// The receiver of a channel is gone.
    ReceiverClosed(ChannelKey),
    /// The sending process shuts down: it sends nothing more.
    Goodbye,
}

/// A message as timely carries it: being sent, or received as timely's bytes.
pub(crate) enum Wire {
    /// A message to send.
    Out(Message),
    /// The bytes of a received message.
    In(Bytes),
}

fn head(kind: u8, key: ChannelKey) -> [u8; HEAD_LEN] {
    let mut head = [0; HEAD_LEN];
    head[0] = kind;
    for (i, v) in [key.attempt, key.edge, key.upstream, key.downstream]
        .into_iter()
        .enumerate()
    {
        head[1 + 4 * i..5 + 4 * i].copy_from_slice(&v.to_be_bytes());
    }
    head
}

const NO_KEY: ChannelKey = ChannelKey {
    attempt: 0,
    edge: 0,
    upstream: 0,
    downstream: 0,
};

impl Message {
    fn parts(&self) -> ([u8; HEAD_LEN], &[u8], Option<[u8; 8]>) {
        match self {
            Message::Frame(key, bytes) => (head(KIND_FRAME, *key), bytes, None),
            Message::Credit(key, n) => (head(KIND_CREDIT, *key), &[], Some(n.to_be_bytes())),
            Message::SenderClosed(key) => (head(KIND_SENDER_CLOSED, *key), &[], None),
            Message::ReceiverClosed(key) => (head(KIND_RECEIVER_CLOSED, *key), &[], None),
            Message::Goodbye => (head(KIND_GOODBYE, NO_KEY), &[], None),
        }
    }

    /// Reads a received message; `None` when the bytes are no message of this protocol.
    pub(crate) fn read(bytes: &[u8]) -> Option<Message> {
        let (head, rest) = bytes.split_first_chunk::<HEAD_LEN>()?;
        let u32_at = |i: usize| {
            let b = head.get(1 + 4 * i..5 + 4 * i)?;
            Some(u32::from_be_bytes(b.try_into().ok()?))
        };
        let key = ChannelKey {
            attempt: u32_at(0)?,
            edge: u32_at(1)?,
            upstream: u32_at(2)?,
            downstream: u32_at(3)?,
        };
        match head[0] {
            KIND_FRAME => Some(Message::Frame(key, rest.to_vec())),
            KIND_CREDIT => Some(Message::Credit(
                key,
                u64::from_be_bytes(rest.try_into().ok()?),
            )),
            KIND_SENDER_CLOSED if rest.is_empty() => Some(Message::SenderClosed(key)),
            KIND_RECEIVER_CLOSED if rest.is_empty() => Some(Message::ReceiverClosed(key)),
            KIND_GOODBYE if rest.is_empty() => Some(Message::Goodbye),
            _ => None,
        }
    }
}

impl Bytesable for Wire {
    fn from_bytes(bytes: Bytes) -> Self {
        Wire::In(bytes)
    }

    fn length_in_bytes(&self) -> usize {
        match self {
            Wire::Out(message) => {
                let (_, body, count) = message.parts();
                HEAD_LEN + body.len() + count.map_or(0, |c| c.len())
            }
            Wire::In(bytes) => bytes.len(),
        }
    }

    fn into_bytes<W: Write>(&self, writer: &mut W) {
        // Timely writes into a buffer of `length_in_bytes`: these writes cannot fail.
        let written = match self {
            Wire::Out(message) => {
                let (head, body, count) = message.parts();
                writer
                    .write_all(&head)
                    .and_then(|()| writer.write_all(body))
                    .and_then(|()| count.map_or(Ok(()), |c| writer.write_all(&c)))
            }
            Wire::In(bytes) => writer.write_all(bytes),
        };
        if let Err(e) = written {
            tracing::error!("a cluster message could not be written into timely's buffer: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(message: Message) -> Option<Message> {
        let wire = Wire::Out(message);
        let mut bytes = Vec::new();
        wire.into_bytes(&mut bytes);
        assert_eq!(bytes.len(), wire.length_in_bytes());
        Message::read(&bytes)
    }

    #[test]
    fn messages_round_trip_and_garbage_is_no_message() {
        let key = ChannelKey {
            attempt: 3,
            edge: 1,
            upstream: 7,
            downstream: 65_536,
        };
        assert!(matches!(
            round_trip(Message::Frame(key, vec![1, 2, 3])),
            Some(Message::Frame(k, b)) if k == key && b == [1, 2, 3]
        ));
        assert!(matches!(
            round_trip(Message::Credit(key, 9)),
            Some(Message::Credit(k, 9)) if k == key
        ));
        assert!(matches!(
            round_trip(Message::SenderClosed(key)),
            Some(Message::SenderClosed(k)) if k == key
        ));
        assert!(matches!(
            round_trip(Message::ReceiverClosed(key)),
            Some(Message::ReceiverClosed(k)) if k == key
        ));
        assert!(matches!(
            round_trip(Message::Goodbye),
            Some(Message::Goodbye)
        ));
        assert!(Message::read(&[KIND_CREDIT; 20]).is_none());
        assert!(Message::read(&[9; HEAD_LEN]).is_none());
        assert!(Message::read(&[KIND_FRAME]).is_none());
    }
}
