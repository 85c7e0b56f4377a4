//! Row formats: text lines, JSON lines and CSV.

use std::io::Write;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, PoisonError};

use serde::de::DeserializeOwned;
use serde::Serialize;
use weir_connector_api::error::{ConnectorError, Result};

use super::{Decoded, RecordDecoder, RecordEncoder, RowFormat};

fn malformed(format: &str, reason: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::malformed(format!("a {format} record"), reason.to_string())
}

/// Splits the next line off `buf` (without `\n` or `\r\n`); `None` if no full line is there.
fn next_line(buf: &[u8], eof: bool) -> Option<(&[u8], usize)> {
    match memchr::memchr(b'\n', buf) {
        Some(i) => {
            let line = &buf[..i];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            Some((line, i + 1))
        }
        None if eof && !buf.is_empty() => {
            let line = buf.strip_suffix(b"\r").unwrap_or(buf);
            Some((line, buf.len()))
        }
        None => None,
    }
}

/// Text files, one `String` per line (`\n` or `\r\n` separated; lines must be UTF-8).
#[derive(Debug, Clone, Copy, Default)]
pub struct TextLinesFormat;

struct TextCodec;

impl RecordEncoder<String> for TextCodec {
    fn encode(&mut self, record: &String, out: &mut Vec<u8>) -> Result<()> {
        out.extend_from_slice(record.as_bytes());
        out.push(b'\n');
        Ok(())
    }
}

impl RecordDecoder<String> for TextCodec {
    fn decode(&mut self, buf: &[u8], eof: bool) -> Result<Decoded<String>> {
        let Some((line, used)) = next_line(buf, eof) else {
            return Ok(Decoded::NeedMore);
        };
        match std::str::from_utf8(line) {
            Ok(s) => Ok(Decoded::Record(s.to_owned(), used)),
            Err(e) => Err(malformed("text line", e)),
        }
    }
}

impl RowFormat<String> for TextLinesFormat {
    fn create_encoder(&self, _at_file_start: bool) -> Result<Box<dyn RecordEncoder<String>>> {
        Ok(Box::new(TextCodec))
    }
    fn create_decoder(&self, _at_file_start: bool) -> Result<Box<dyn RecordDecoder<String>>> {
        Ok(Box::new(TextCodec))
    }
    fn name(&self) -> &'static str {
        "text"
    }
}

/// Text lines of serde records whose serde form is a string (`String`, or a newtype of it with
/// `#[serde(transparent)]`): what `format = "text"` builds for typed records.
pub(crate) struct SerdeTextFormat<T> {
    _t: PhantomData<fn() -> T>,
}

impl<T> SerdeTextFormat<T> {
    pub(crate) fn new() -> Self {
        SerdeTextFormat { _t: PhantomData }
    }
}

struct SerdeTextCodec<T>(PhantomData<fn() -> T>);

impl<T: Serialize> RecordEncoder<T> for SerdeTextCodec<T> {
    fn encode(&mut self, record: &T, out: &mut Vec<u8>) -> Result<()> {
        match serde_json::to_value(record) {
            Ok(serde_json::Value::String(s)) => {
                if s.contains(['\n', '\r']) {
                    return Err(malformed(
                        "text",
                        "the value contains a line break, which a text file cannot hold in one line",
                    ));
                }
                out.extend_from_slice(s.as_bytes());
                out.push(b'\n');
                Ok(())
            }
            Ok(_) => Err(malformed(
                "text",
                "the text format writes records that serialize to a string; use json or csv for \
                 structured records",
            )),
            Err(e) => Err(malformed("text", e)),
        }
    }
}

impl<T: DeserializeOwned> RecordDecoder<T> for SerdeTextCodec<T> {
    fn decode(&mut self, buf: &[u8], eof: bool) -> Result<Decoded<T>> {
        use serde::de::IntoDeserializer;
        let Some((line, used)) = next_line(buf, eof) else {
            return Ok(Decoded::NeedMore);
        };
        let text = std::str::from_utf8(line).map_err(|e| malformed("text line", e))?;
        let deserializer: serde::de::value::StrDeserializer<'_, serde::de::value::Error> =
            text.into_deserializer();
        T::deserialize(deserializer)
            .map(|r| Decoded::Record(r, used))
            .map_err(|e| malformed("text line", e))
    }
}

impl<T: Serialize + DeserializeOwned + Send + 'static> RowFormat<T> for SerdeTextFormat<T> {
    fn create_encoder(&self, _at_file_start: bool) -> Result<Box<dyn RecordEncoder<T>>> {
        Ok(Box::new(SerdeTextCodec(PhantomData)))
    }
    fn create_decoder(&self, _at_file_start: bool) -> Result<Box<dyn RecordDecoder<T>>> {
        Ok(Box::new(SerdeTextCodec(PhantomData)))
    }
    fn name(&self) -> &'static str {
        "text"
    }
}

/// JSON lines: one JSON document per line, records mapped with serde. Empty lines are skipped.
pub struct JsonLinesFormat<T> {
    _t: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for JsonLinesFormat<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JsonLinesFormat")
    }
}

impl<T> Default for JsonLinesFormat<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> JsonLinesFormat<T> {
    /// The format.
    pub fn new() -> Self {
        JsonLinesFormat { _t: PhantomData }
    }
}

struct JsonCodec<T>(PhantomData<fn() -> T>);

impl<T: Serialize> RecordEncoder<T> for JsonCodec<T> {
    fn encode(&mut self, record: &T, out: &mut Vec<u8>) -> Result<()> {
        serde_json::to_writer(&mut *out, record).map_err(|e| malformed("json", e))?;
        out.push(b'\n');
        Ok(())
    }
}

impl<T: DeserializeOwned> RecordDecoder<T> for JsonCodec<T> {
    fn decode(&mut self, buf: &[u8], eof: bool) -> Result<Decoded<T>> {
        let Some((line, used)) = next_line(buf, eof) else {
            return Ok(Decoded::NeedMore);
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(Decoded::Skip(used));
        }
        serde_json::from_slice(line)
            .map(|r| Decoded::Record(r, used))
            .map_err(|e| malformed("json", e))
    }
}

impl<T: Serialize + DeserializeOwned + Send + 'static> RowFormat<T> for JsonLinesFormat<T> {
    fn create_encoder(&self, _at_file_start: bool) -> Result<Box<dyn RecordEncoder<T>>> {
        Ok(Box::new(JsonCodec(PhantomData)))
    }
    fn create_decoder(&self, _at_file_start: bool) -> Result<Box<dyn RecordDecoder<T>>> {
        Ok(Box::new(JsonCodec(PhantomData)))
    }
    fn name(&self) -> &'static str {
        "json"
    }
}

/// CSV of typed records with serde: fields map to struct fields by position. With headers, each
/// part file starts with a header line (the field names) and a reader skips the first line of
/// each file. (Pipeline files use the `csv` row format of `weir-formats`, `CsvFormat`, instead.)
pub struct CsvRecordFormat<T> {
    delimiter: u8,
    headers: bool,
    _t: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for CsvRecordFormat<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvRecordFormat")
            .field("delimiter", &(self.delimiter as char))
            .field("headers", &self.headers)
            .finish()
    }
}

impl<T> Default for CsvRecordFormat<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> CsvRecordFormat<T> {
    /// Comma-separated, with a header line.
    pub fn new() -> Self {
        CsvRecordFormat {
            delimiter: b',',
            headers: true,
            _t: PhantomData,
        }
    }

    /// Sets the field delimiter.
    pub fn delimiter(mut self, delimiter: u8) -> Self {
        self.delimiter = delimiter;
        self
    }

    /// Whether files start with a header line.
    pub fn headers(mut self, headers: bool) -> Self {
        self.headers = headers;
        self
    }
}

/// A `Write` into a shared buffer, so the encoder can take what the CSV writer produced.
#[derive(Clone, Default)]
struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl Write for SharedBuf {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct CsvEncoder<T> {
    writer: csv::Writer<SharedBuf>,
    buf: SharedBuf,
    _t: PhantomData<fn(T)>,
}

impl<T: Serialize> RecordEncoder<T> for CsvEncoder<T> {
    fn encode(&mut self, record: &T, out: &mut Vec<u8>) -> Result<()> {
        self.writer
            .serialize(record)
            .map_err(|e| malformed("csv", e))?;
        self.writer.flush().map_err(|e| malformed("csv", e))?;
        let mut buf = self.buf.0.lock().unwrap_or_else(PoisonError::into_inner);
        out.extend_from_slice(&buf);
        buf.clear();
        Ok(())
    }
}

struct CsvDecoder<T> {
    framer: CsvFramer,
    skip_header: bool,
    _t: PhantomData<fn() -> T>,
}

/// What [`CsvFramer::next`] found at the start of a buffer.
pub(crate) enum CsvStep {
    /// No complete record yet: more input is needed.
    NeedMore,
    /// The end of the input after `consumed` bytes that held no record (e.g. a final newline).
    End(usize),
    /// A record of `consumed` bytes; [`CsvFramer::fields`] gives its fields.
    Record {
        /// Bytes of input the record used, with its terminator.
        consumed: usize,
        /// Fields in the framer's output.
        fields: usize,
    },
}

/// Frames CSV records with `csv_core` (quotes, escaped line breaks), reusing its buffers.
pub(crate) struct CsvFramer {
    reader: csv_core::Reader,
    output: Vec<u8>,
    ends: Vec<usize>,
}

impl CsvFramer {
    /// A framer over `reader`'s dialect.
    pub(crate) fn new(reader: csv_core::Reader) -> Self {
        CsvFramer {
            reader,
            output: vec![0; 1024],
            ends: vec![0; 32],
        }
    }

    /// The next record at the start of `buf` (`eof`: no input follows `buf`).
    pub(crate) fn next(&mut self, buf: &[u8], eof: bool) -> CsvStep {
        use csv_core::ReadRecordResult;
        self.reader.reset();
        let mut consumed = 0;
        let mut out_len = 0;
        let mut ends_len = 0;
        loop {
            let input = buf.get(consumed..).unwrap_or_default();
            let (result, nin, nout, nend) = self.reader.read_record(
                input,
                self.output.get_mut(out_len..).unwrap_or_default(),
                self.ends.get_mut(ends_len..).unwrap_or_default(),
            );
            consumed += nin;
            out_len += nout;
            ends_len += nend;
            match result {
                ReadRecordResult::InputEmpty => {
                    // Without more input the record is incomplete; at the end of the file an
                    // empty input (next round) tells the reader to finish the last record.
                    if !eof || input.is_empty() {
                        return CsvStep::NeedMore;
                    }
                }
                ReadRecordResult::OutputFull => {
                    let len = self.output.len().max(64);
                    self.output.resize(len * 2, 0);
                }
                ReadRecordResult::OutputEndsFull => {
                    let len = self.ends.len().max(8);
                    self.ends.resize(len * 2, 0);
                }
                ReadRecordResult::Record => {
                    return CsvStep::Record {
                        consumed,
                        fields: ends_len,
                    }
                }
                ReadRecordResult::End => {
                    return if consumed > 0 {
                        CsvStep::End(consumed)
                    } else {
                        CsvStep::NeedMore
                    };
                }
            }
        }
    }

    /// The first `count` fields of the last record.
    pub(crate) fn fields(&self, count: usize) -> impl Iterator<Item = &[u8]> {
        let mut start = 0;
        self.ends
            .get(..count)
            .unwrap_or_default()
            .iter()
            .map(move |end| {
                let field = self.output.get(start..*end).unwrap_or_default();
                start = *end;
                field
            })
    }
}

impl<T: DeserializeOwned> RecordDecoder<T> for CsvDecoder<T> {
    fn decode(&mut self, buf: &[u8], eof: bool) -> Result<Decoded<T>> {
        let (consumed, fields) = match self.framer.next(buf, eof) {
            CsvStep::NeedMore => return Ok(Decoded::NeedMore),
            CsvStep::End(consumed) => return Ok(Decoded::Skip(consumed)),
            CsvStep::Record { consumed, fields } => (consumed, fields),
        };
        if self.skip_header {
            self.skip_header = false;
            return Ok(Decoded::Skip(consumed));
        }
        let mut record = csv::ByteRecord::with_capacity(consumed, fields);
        for field in self.framer.fields(fields) {
            record.push_field(field);
        }
        if record.len() == 1 && record.get(0).is_some_and(<[u8]>::is_empty) {
            return Ok(Decoded::Skip(consumed)); // an empty line
        }
        record
            .deserialize::<T>(None)
            .map(|r| Decoded::Record(r, consumed))
            .map_err(|e| malformed("csv", e))
    }
}

impl<T: Serialize + DeserializeOwned + Send + 'static> RowFormat<T> for CsvRecordFormat<T> {
    fn create_encoder(&self, at_file_start: bool) -> Result<Box<dyn RecordEncoder<T>>> {
        let buf = SharedBuf::default();
        let writer = csv::WriterBuilder::new()
            .delimiter(self.delimiter)
            .has_headers(self.headers && at_file_start)
            .from_writer(buf.clone());
        Ok(Box::new(CsvEncoder {
            writer,
            buf,
            _t: PhantomData,
        }))
    }

    fn create_decoder(&self, at_file_start: bool) -> Result<Box<dyn RecordDecoder<T>>> {
        Ok(Box::new(CsvDecoder {
            framer: CsvFramer::new(
                csv_core::ReaderBuilder::new()
                    .delimiter(self.delimiter)
                    .build(),
            ),
            skip_header: self.headers && at_file_start,
            _t: PhantomData,
        }))
    }

    fn name(&self) -> &'static str {
        "csv"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip<T, F>(format: &F, records: &[T], chunk: usize) -> Vec<T>
    where
        F: RowFormat<T>,
        T: std::fmt::Debug,
    {
        let mut enc = format.create_encoder(true).unwrap();
        let mut bytes = Vec::new();
        enc.begin(&mut bytes).unwrap();
        for r in records {
            enc.encode(r, &mut bytes).unwrap();
        }
        // Decode with input arriving in small chunks.
        let mut dec = format.create_decoder(true).unwrap();
        let mut out = Vec::new();
        let mut buf: Vec<u8> = Vec::new();
        let mut fed = 0;
        loop {
            let eof = fed >= bytes.len();
            match dec.decode(&buf, eof).unwrap() {
                Decoded::Record(r, n) => {
                    out.push(r);
                    buf.drain(..n);
                }
                Decoded::Skip(n) => {
                    buf.drain(..n);
                }
                Decoded::NeedMore => {
                    if eof {
                        break;
                    }
                    let end = (fed + chunk).min(bytes.len());
                    buf.extend_from_slice(&bytes[fed..end]);
                    fed = end;
                }
            }
        }
        out
    }

    #[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
    struct Row {
        id: u64,
        name: String,
    }

    #[test]
    fn formats_roundtrip_across_chunk_boundaries() {
        let rows: Vec<Row> = (0..50)
            .map(|i| Row {
                id: i,
                name: format!("n,\"{i}\"\nx"),
            })
            .collect();
        for chunk in [1, 3, 7, 1000] {
            assert_eq!(roundtrip(&CsvRecordFormat::new(), &rows, chunk), rows);
            assert_eq!(
                roundtrip(&CsvRecordFormat::new().headers(false), &rows, chunk),
                rows
            );
            assert_eq!(roundtrip(&JsonLinesFormat::new(), &rows, chunk), rows);
        }
        let lines: Vec<String> = (0..20).map(|i| format!("line {i}")).collect();
        assert_eq!(roundtrip(&TextLinesFormat, &lines, 4), lines);
        assert_eq!(
            roundtrip(&SerdeTextFormat::<String>::new(), &lines, 3),
            lines
        );
    }

    #[test]
    fn serde_text_takes_string_records_only() {
        let mut enc = RowFormat::<Row>::create_encoder(&SerdeTextFormat::new(), true).unwrap();
        let row = Row {
            id: 1,
            name: "x".into(),
        };
        assert!(enc.encode(&row, &mut Vec::new()).is_err());
        let mut enc = RowFormat::<String>::create_encoder(&SerdeTextFormat::new(), true).unwrap();
        assert!(enc.encode(&"a\nb".to_owned(), &mut Vec::new()).is_err());
    }

    #[test]
    fn malformed_records_are_errors_not_panics() {
        let mut dec = RowFormat::<Row>::create_decoder(&JsonLinesFormat::new(), true).unwrap();
        assert!(dec.decode(b"{not json}\n", false).is_err());
        let mut dec =
            RowFormat::<Row>::create_decoder(&CsvRecordFormat::new().headers(false), true).unwrap();
        assert!(dec.decode(b"x,y\n", false).is_err());
    }
}
