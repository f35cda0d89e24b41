//! The kernel/userspace contract.
//!
//! The types and constants come from bindgen over
//! `kmod/include/peregrine_abi.h` at build time, so the layout is stated only
//! in the C header. The ioctl request codes are recomputed here with nix from
//! the header's magic and numbers, and a test holds them equal to the values
//! the C preprocessor gives (`generated::PG_IOCTL_*`).

use std::fmt;

#[allow(non_camel_case_types, non_upper_case_globals, dead_code, missing_docs)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/peregrine_abi.rs"));
}

pub use generated::*;

/// Length of the packed scap event header every record starts with.
pub const EVENT_HDR_LEN: usize = PG_EVENT_HDR_LEN as usize;

/// Bytes the single mmap() of a device covers (`PG_MMAP_LEN`).
pub const fn mmap_len(buffer_size: u64) -> u64 {
    PG_INFO_PAGE_SIZE as u64 + 2 * buffer_size
}

/// Ioctl command numbers, as passed to `_IO*(PG_IOCTL_MAGIC, nr, ...)`.
pub mod ioctl_nr {
    pub const GET_API_VERSION: u8 = 0;
    pub const START_CAPTURE: u8 = 1;
    pub const STOP_CAPTURE: u8 = 2;
    pub const SET_SNAPLEN: u8 = 3;
    pub const SET_INTEREST: u8 = 4;
    pub const SET_SAMPLING: u8 = 5;
    pub const GET_BUFFER_SIZE: u8 = 6;
}

/// The full ioctl request codes, computed with nix's `request_code_*`.
// The request type is c_ulong or c_int depending on the libc; u64 holds both.
#[allow(clippy::unnecessary_cast)]
pub mod ioctl_code {
    use super::{ioctl_nr, pg_sampling, pg_syscall_mask, PG_IOCTL_MAGIC};
    use nix::{request_code_none, request_code_read, request_code_write};
    use std::mem::size_of;

    pub const GET_API_VERSION: u64 =
        request_code_read!(PG_IOCTL_MAGIC, ioctl_nr::GET_API_VERSION, size_of::<u64>()) as u64;
    pub const START_CAPTURE: u64 =
        request_code_none!(PG_IOCTL_MAGIC, ioctl_nr::START_CAPTURE) as u64;
    pub const STOP_CAPTURE: u64 = request_code_none!(PG_IOCTL_MAGIC, ioctl_nr::STOP_CAPTURE) as u64;
    pub const SET_SNAPLEN: u64 =
        request_code_write!(PG_IOCTL_MAGIC, ioctl_nr::SET_SNAPLEN, size_of::<u32>()) as u64;
    pub const SET_INTEREST: u64 = request_code_write!(
        PG_IOCTL_MAGIC,
        ioctl_nr::SET_INTEREST,
        size_of::<pg_syscall_mask>()
    ) as u64;
    pub const SET_SAMPLING: u64 = request_code_write!(
        PG_IOCTL_MAGIC,
        ioctl_nr::SET_SAMPLING,
        size_of::<pg_sampling>()
    ) as u64;
    pub const GET_BUFFER_SIZE: u64 =
        request_code_read!(PG_IOCTL_MAGIC, ioctl_nr::GET_BUFFER_SIZE, size_of::<u64>()) as u64;
}

/// A decoded `PG_API_VERSION` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiVersion {
    pub major: u32,
    pub minor: u16,
    pub patch: u16,
}

impl ApiVersion {
    /// The version this crate was built against.
    pub const OURS: ApiVersion = ApiVersion::from_raw(PG_API_VERSION);

    /// Splits the packed form: major in the high 32 bits, then minor, then patch.
    pub const fn from_raw(raw: u64) -> ApiVersion {
        ApiVersion {
            major: (raw >> 32) as u32,
            minor: (raw >> 16) as u16,
            patch: raw as u16,
        }
    }

    /// Only the major number breaks compatibility (see the header).
    pub fn is_compatible_with(self, other: ApiVersion) -> bool {
        self.major == other.major
    }

    /// Whether a module of this version wakes a consumer blocked in poll()
    /// (the info page's `wake_bytes`, since 2.1).
    pub fn has_poll_wakeups(self) -> bool {
        self.major > 2 || (self.major == 2 && self.minor >= 1)
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_codes_match_the_header_macros() {
        assert_eq!(ioctl_code::GET_API_VERSION, PG_IOCTL_GET_API_VERSION as u64);
        assert_eq!(ioctl_code::START_CAPTURE, PG_IOCTL_START_CAPTURE as u64);
        assert_eq!(ioctl_code::STOP_CAPTURE, PG_IOCTL_STOP_CAPTURE as u64);
        assert_eq!(ioctl_code::SET_SNAPLEN, PG_IOCTL_SET_SNAPLEN as u64);
        assert_eq!(ioctl_code::SET_INTEREST, PG_IOCTL_SET_INTEREST as u64);
        assert_eq!(ioctl_code::SET_SAMPLING, PG_IOCTL_SET_SAMPLING as u64);
        assert_eq!(ioctl_code::GET_BUFFER_SIZE, PG_IOCTL_GET_BUFFER_SIZE as u64);
    }

    #[test]
    fn layouts_are_the_scap_ones() {
        assert_eq!(std::mem::size_of::<pg_event_hdr>(), EVENT_HDR_LEN);
        assert_eq!(EVENT_HDR_LEN, 26);
        // tail sits on its own cache line, away from the producer's words.
        assert_eq!(std::mem::offset_of!(pg_ring_info, tail) % 64, 0);
        assert!(
            std::mem::offset_of!(pg_ring_info, tail)
                >= 64 + std::mem::offset_of!(pg_ring_info, n_drops_too_large)
        );
        assert!(std::mem::size_of::<pg_ring_info>() <= PG_INFO_PAGE_SIZE as usize);
    }

    #[test]
    fn api_version_decodes_major_minor_patch() {
        let v = ApiVersion::from_raw((3u64 << 32) | (7 << 16) | 9);
        assert_eq!(
            v,
            ApiVersion {
                major: 3,
                minor: 7,
                patch: 9
            }
        );
        assert_eq!(v.to_string(), "3.7.9");
        assert_eq!(ApiVersion::OURS.major, PG_API_VERSION_MAJOR);
        assert!(ApiVersion::OURS.is_compatible_with(ApiVersion::from_raw(PG_API_VERSION + 5)));
        assert!(!ApiVersion::OURS.is_compatible_with(v));
        assert!(ApiVersion::OURS.has_poll_wakeups());
        assert!(!ApiVersion {
            major: 2,
            minor: 0,
            patch: 9
        }
        .has_poll_wakeups());
        assert_eq!(mmap_len(8192), 4096 + 16384);
    }
}
