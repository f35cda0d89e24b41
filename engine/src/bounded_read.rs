//! Reading a whole file with a ceiling: a path that names /dev/zero, a
//! FIFO or a file grown by mistake must end in an error, not in all memory.

use std::io::Read;
use std::path::Path;

/// The largest rules file read (Falco's own rules are under 200 KB).
pub const MAX_RULES_FILE_BYTES: u64 = 16 << 20;

/// A file read whole and found too large, or unreadable.
#[derive(Debug, thiserror::Error)]
pub enum BoundedReadError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("larger than the {} MiB allowed", .max >> 20)]
    TooLarge { max: u64 },
    #[error("not UTF-8 text")]
    NotText,
}

/// The text of `path`, read until its end or until more than `max` bytes
/// came in, whichever is first; works on pipes and devices too.
pub fn read_text(path: &Path, max: u64) -> Result<String, BoundedReadError> {
    String::from_utf8(read_bytes(path, max)?).map_err(|_| BoundedReadError::NotText)
}

/// The bytes of `path`, with the same ceiling as [`read_text`].
pub fn read_bytes(path: &Path, max: u64) -> Result<Vec<u8>, BoundedReadError> {
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(BoundedReadError::TooLarge { max });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endless_device_stops_at_the_ceiling() {
        let err = read_text(Path::new("/dev/zero"), 1 << 20).unwrap_err();
        assert!(matches!(err, BoundedReadError::TooLarge { max } if max == 1 << 20));
        assert_eq!(err.to_string(), "larger than the 1 MiB allowed");
    }

    #[test]
    fn a_file_at_the_ceiling_is_read() {
        let path = std::env::temp_dir().join(format!("bounded-read-{}", std::process::id()));
        std::fs::write(&path, "x".repeat(1024)).unwrap();
        assert_eq!(read_text(&path, 1024).unwrap().len(), 1024);
        assert!(read_text(&path, 1023).is_err());
        std::fs::remove_file(&path).unwrap();
    }
}
