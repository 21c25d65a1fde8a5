//! Names of namespaces and segments: validated before they reach a path.

use super::SegmentError;

/// Longest accepted name, in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// Checks that `name` is 1–64 characters of `[A-Za-z0-9._-]` and does not
/// start with a dot, so it can never be `.`, `..`, a hidden file or a path.
///
/// # Errors
///
/// [`SegmentError::InvalidName`] saying which rule the name breaks.
///
/// # Examples
///
/// ```
/// use shmbus::segment::validate_name;
/// assert!(validate_name("market_data.v2").is_ok());
/// assert!(validate_name("../etc").is_err());
/// ```
pub fn validate_name(name: &str) -> Result<(), SegmentError> {
    if name.len() > MAX_NAME_LEN {
        return Err(SegmentError::InvalidName {
            name: name.escape_debug().to_string(),
            reason: "is longer than 64 bytes",
        });
    }
    validate_segment_name(name)
}

/// Longest segment name, in bytes: a ring's file name is its directory
/// entry, epoch and 64-byte name (see `RingKind::segment_name`), and with
/// its suffix it stays well within the 255 bytes a file name may have.
pub const MAX_SEGMENT_NAME_LEN: usize = 128;

const _: () = assert!(MAX_SEGMENT_NAME_LEN + ".bcast".len() <= 255);

/// Checks a segment's name (its file name without the suffix) by the rules
/// of [`validate_name`], but up to [`MAX_SEGMENT_NAME_LEN`] bytes: a ring's
/// segment name holds its ring's name after a fixed prefix.
///
/// # Errors
///
/// [`SegmentError::InvalidName`] saying which rule the name breaks.
///
/// # Examples
///
/// ```
/// use shmbus::segment::validate_segment_name;
/// assert!(validate_segment_name("topic-3-1.market_data").is_ok());
/// assert!(validate_segment_name("topic-3-1/../x").is_err());
/// ```
pub fn validate_segment_name(name: &str) -> Result<(), SegmentError> {
    let reason = if name.is_empty() {
        Some("is empty")
    } else if name.len() > MAX_SEGMENT_NAME_LEN {
        Some("is longer than 128 bytes")
    } else if name.starts_with('.') {
        Some("starts with a dot")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        Some("contains a character outside [A-Za-z0-9._-]")
    } else {
        None
    };
    match reason {
        None => Ok(()),
        Some(reason) => Err(SegmentError::InvalidName {
            name: name.escape_debug().to_string(),
            reason,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_charset() {
        for ok in ["a", "market_data", "md.v2-A_9", &"x".repeat(64), "a.."] {
            assert!(validate_name(ok).is_ok(), "{ok:?} should be accepted");
        }
    }

    #[test]
    fn rejects_paths_and_odd_bytes() {
        let long = "x".repeat(65);
        for bad in [
            "", "../x", "a/b", ".", "..", ".hidden", "a\0b", "a b", "é", "a\\b", &long,
        ] {
            assert!(
                matches!(validate_name(bad), Err(SegmentError::InvalidName { .. })),
                "{bad:?} should be rejected"
            );
        }
    }
}
