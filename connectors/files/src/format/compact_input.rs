//! The part files a compaction reads: read in place from a local file, range by range as the
//! compactor asks for them, or held in memory (a filesystem that cannot hand out a local file,
//! e.g. an S3 upload that is not yet committed).

use std::fs::File;
use std::io::Read;
use std::sync::Arc;

use bytes::Bytes;
use weir_connector_api::error::Result;

use crate::fs::io_error;

/// The first read of a [`CompactInput::reader_at`] (page headers need no more); each further
/// read doubles, up to [`MAX_READ`], so a long copy costs few system calls.
const FIRST_READ: usize = 8 * 1024;
/// The largest read of a [`CompactInput::reader_at`].
const MAX_READ: usize = 1024 * 1024;

/// One part file to compact.
#[derive(Debug, Clone)]
pub struct CompactInput {
    source: Source,
    len: u64,
}

#[derive(Debug, Clone)]
enum Source {
    Memory(Bytes),
    File(Arc<File>),
}

impl CompactInput {
    /// A file held in memory.
    pub fn from_bytes(bytes: Bytes) -> Self {
        CompactInput {
            len: bytes.len() as u64,
            source: Source::Memory(bytes),
        }
    }

    /// A file read in place: its first `len` bytes (a pending part file holds exactly the
    /// bytes its recoverable counts).
    pub fn from_file(file: File, len: u64) -> Self {
        CompactInput {
            source: Source::File(Arc::new(file)),
            len,
        }
    }

    /// The file's length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The whole file in memory (read now for a file read in place), for formats that compact
    /// in memory.
    pub fn to_bytes(&self) -> Result<Bytes> {
        match &self.source {
            Source::Memory(bytes) => Ok(bytes.clone()),
            Source::File(_) => {
                let len = usize::try_from(self.len).unwrap_or(usize::MAX);
                self.range(0, len)
            }
        }
    }

    /// `len` bytes from `start`; an error if the file ends before.
    pub fn range(&self, start: u64, len: usize) -> Result<Bytes> {
        let end = start.saturating_add(len as u64);
        if end > self.len {
            return Err(io_error(
                "reading a part file to compact",
                std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("bytes {start}..{end} asked of a file of {} bytes", self.len),
                ),
            ));
        }
        match &self.source {
            Source::Memory(bytes) => Ok(bytes.slice(start as usize..end as usize)),
            Source::File(file) => {
                let mut buf = vec![0; len];
                read_exact_at(file, &mut buf, start)
                    .map_err(|e| io_error("reading a part file to compact", e))?;
                Ok(Bytes::from(buf))
            }
        }
    }

    /// A reader of the file from `start` to its end.
    pub fn reader_at(&self, start: u64) -> InputReader {
        let pos = start.min(self.len);
        InputReader {
            source: match &self.source {
                Source::Memory(bytes) => ReaderSource::Memory(bytes.slice(pos as usize..)),
                Source::File(file) => ReaderSource::File {
                    file: Arc::clone(file),
                    pos,
                    end: self.len,
                    buf: Vec::new(),
                    at: 0,
                    next_read: FIRST_READ,
                },
            },
        }
    }
}

/// Reads a [`CompactInput`] sequentially (see [`CompactInput::reader_at`]): positioned reads
/// of growing size into its own buffer, so several readers of one file never disturb each
/// other.
#[derive(Debug)]
pub struct InputReader {
    source: ReaderSource,
}

#[derive(Debug)]
enum ReaderSource {
    Memory(Bytes),
    File {
        file: Arc<File>,
        pos: u64,
        end: u64,
        buf: Vec<u8>,
        at: usize,
        next_read: usize,
    },
}

impl Read for InputReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        match &mut self.source {
            ReaderSource::Memory(bytes) => {
                let n = out.len().min(bytes.len());
                out[..n].copy_from_slice(&bytes.split_to(n));
                Ok(n)
            }
            ReaderSource::File {
                file,
                pos,
                end,
                buf,
                at,
                next_read,
            } => {
                if *at == buf.len() {
                    let want = usize::try_from(end.saturating_sub(*pos))
                        .unwrap_or(usize::MAX)
                        .min(*next_read);
                    if want == 0 {
                        return Ok(0);
                    }
                    buf.resize(want, 0);
                    read_exact_at(file, buf, *pos)?;
                    *pos += want as u64;
                    *at = 0;
                    *next_read = (*next_read * 2).min(MAX_READ);
                }
                let n = out.len().min(buf.len() - *at);
                out[..n].copy_from_slice(&buf[*at..*at + n]);
                *at += n;
                Ok(n)
            }
        }
    }
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(not(unix))]
fn read_exact_at(mut file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    // One compaction reads its inputs from one thread: the shared cursor is not raced.
    use std::io::{Seek, SeekFrom};
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(buf)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::io::{Seek, SeekFrom, Write};

    use super::*;

    fn content() -> Vec<u8> {
        (0..3_000_000u32).map(|i| (i % 251) as u8).collect()
    }

    fn inputs() -> Vec<CompactInput> {
        let data = content();
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&data).unwrap();
        // A longer file: only the first `len` bytes belong to the input.
        file.write_all(b"trailing").unwrap();
        file.seek(SeekFrom::Start(0)).unwrap();
        vec![
            CompactInput::from_bytes(Bytes::from(data.clone())),
            CompactInput::from_file(file, data.len() as u64),
        ]
    }

    #[test]
    fn readers_and_ranges_read_the_inputs_bytes() {
        let data = content();
        for input in inputs() {
            assert_eq!(input.len(), data.len() as u64);
            assert_eq!(input.to_bytes().unwrap().as_ref(), &data[..]);
            assert_eq!(
                input.range(1_000, 10).unwrap().as_ref(),
                &data[1_000..1_010]
            );
            assert!(input.range(data.len() as u64 - 5, 10).is_err());
            for start in [0, 7, 2_999_999, 3_000_000] {
                let mut read = Vec::new();
                // Small reads first (a page header), then the rest.
                let mut reader = input.reader_at(start);
                let mut head = [0u8; 3];
                let n = reader.read(&mut head).unwrap();
                read.extend_from_slice(&head[..n]);
                reader.read_to_end(&mut read).unwrap();
                assert_eq!(read, &data[start as usize..], "from {start}");
            }
        }
    }

    #[test]
    fn readers_of_one_file_are_independent() {
        let data = content();
        let input = inputs().pop().unwrap();
        let mut a = input.reader_at(10);
        let mut b = input.reader_at(2_000_000);
        let (mut x, mut y) = ([0u8; 100], [0u8; 100]);
        a.read_exact(&mut x).unwrap();
        b.read_exact(&mut y).unwrap();
        a.read_exact(&mut x).unwrap();
        assert_eq!(&x[..], &data[110..210]);
        assert_eq!(&y[..], &data[2_000_000..2_000_100]);
    }
}
