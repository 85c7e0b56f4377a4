//! Part file names: `<prefix>-<uuid>-<counter><suffix>`.
//!
//! The uuid is a version-8 UUID that carries the writing subtask and the *epoch* (one more than
//! the last checkpoint the writer snapshotted when it opened the file), so that after a restore
//! from checkpoint `n` the in-progress files of epochs above `n` are known to be referenced by
//! no checkpoint and can be swept. The rest of the uuid is random.

/// Prefix and suffix of part file names (Flink's `OutputFileConfig`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OutputFileConfig {
    /// The prefix, default `part`. Sinks writing into the same directory must use different ones.
    pub prefix: String,
    /// The suffix, e.g. `.parquet` (default: the format's extension).
    pub suffix: String,
}

impl OutputFileConfig {
    /// A prefix and suffix.
    pub fn new(prefix: impl Into<String>, suffix: impl Into<String>) -> Self {
        OutputFileConfig {
            prefix: prefix.into(),
            suffix: suffix.into(),
        }
    }
}

/// What a part file's uuid says about who wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Label {
    /// The writing subtask (of the writer or of the compactor).
    pub subtask: u32,
    /// The job attempt that wrote it (how often the job had restarted).
    pub attempt: u32,
    /// One more than the last checkpoint snapshotted before the file was opened.
    pub epoch: u64,
}

/// The prefix of compacted files.
pub const COMPACTED_PREFIX: &str = "compacted-";

/// A fresh uuid carrying `label`.
pub fn label_uuid(label: Label) -> uuid::Uuid {
    let random = uuid::Uuid::new_v4();
    let r = random.as_bytes();
    let mut b = [0_u8; 16];
    b[..4].copy_from_slice(&r[..4]);
    let subtask = u16::try_from(label.subtask).unwrap_or(u16::MAX);
    b[4..6].copy_from_slice(&subtask.to_be_bytes());
    b[6] = r[6];
    b[7] = r[7];
    b[8] = r[8];
    let attempt = u16::try_from(label.attempt).unwrap_or(u16::MAX);
    b[9..11].copy_from_slice(&attempt.to_be_bytes());
    let epoch = label.epoch.min((1 << 40) - 1).to_be_bytes();
    b[11..16].copy_from_slice(&epoch[3..8]);
    uuid::Uuid::new_v8(b)
}

/// The label in a uuid made by [`label_uuid`].
pub fn parse_label(id: &uuid::Uuid) -> Option<Label> {
    if id.get_version_num() != 8 {
        return None;
    }
    let b = id.as_bytes();
    let subtask = u32::from(u16::from_be_bytes([b[4], b[5]]));
    let attempt = u32::from(u16::from_be_bytes([b[9], b[10]]));
    let mut epoch = [0_u8; 8];
    epoch[3..8].copy_from_slice(&b[11..16]);
    Some(Label {
        subtask,
        attempt,
        epoch: u64::from_be_bytes(epoch),
    })
}

/// The name of part file `counter` written under `label`.
pub fn part_name(config: &OutputFileConfig, id: &uuid::Uuid, counter: u64) -> String {
    format!("{}-{id}-{counter}{}", config.prefix, config.suffix)
}

/// The label of a part file name `[.][compacted-]<prefix>-<uuid>-<counter><suffix>`, with
/// whether it is a compacted file; `None` for other names.
pub fn parse_part_name(config: &OutputFileConfig, name: &str) -> Option<(Label, bool)> {
    let name = name.strip_prefix('.').unwrap_or(name);
    let (name, compacted) = match name.strip_prefix(COMPACTED_PREFIX) {
        Some(rest) => (rest, true),
        None => (name, false),
    };
    let rest = name
        .strip_prefix(config.prefix.as_str())?
        .strip_prefix('-')?;
    let id = uuid::Uuid::parse_str(rest.get(..36)?).ok()?;
    let rest = rest.get(36..)?.strip_prefix('-')?;
    let rest = rest.strip_suffix(config.suffix.as_str())?;
    if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    parse_label(&id).map(|l| (l, compacted))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_survive_the_name() {
        let config = OutputFileConfig::new("part", ".json");
        let label = Label {
            subtask: 7,
            attempt: 3,
            epoch: 123_456_789,
        };
        let id = label_uuid(label);
        let name = part_name(&config, &id, 42);
        assert_eq!(parse_part_name(&config, &name), Some((label, false)));
        assert_eq!(
            parse_part_name(&config, &format!(".{name}")),
            Some((label, false))
        );
        assert_eq!(
            parse_part_name(&config, &format!("{COMPACTED_PREFIX}{name}")),
            Some((label, true))
        );
        assert_eq!(parse_part_name(&config, "part-x-1.json"), None);
        let other = OutputFileConfig::new("other", ".json");
        assert_eq!(parse_part_name(&other, &name), None);
        assert_ne!(label_uuid(label), label_uuid(label), "the rest is random");
    }
}
