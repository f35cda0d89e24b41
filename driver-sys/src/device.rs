//! The per-CPU character devices of `peregrine.ko`: open, version check,
//! mmap of each ring, and the control ioctls.

use crate::abi::{
    self, ioctl_nr, pg_sampling, pg_syscall_mask, ApiVersion, PG_DEVICE_PREFIX, PG_MAX_SNAPLEN,
    PG_SYSCALL_NR_MAX,
};
use crate::merge::MergedReader;
use crate::ring::{Backing, BadBufferSize, Ring};
use crate::stats::Stats;
use nix::errno::Errno;
use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;

/// The generated ioctl wrappers (nix builds the request codes from the
/// header's magic and numbers; `abi` tests them against the header).
mod ioctls {
    use super::{ioctl_nr, pg_sampling, pg_syscall_mask};
    use crate::abi::PG_IOCTL_MAGIC;
    nix::ioctl_read!(
        get_api_version,
        PG_IOCTL_MAGIC,
        ioctl_nr::GET_API_VERSION,
        u64
    );
    nix::ioctl_none!(start_capture, PG_IOCTL_MAGIC, ioctl_nr::START_CAPTURE);
    nix::ioctl_none!(stop_capture, PG_IOCTL_MAGIC, ioctl_nr::STOP_CAPTURE);
    nix::ioctl_write_ptr!(set_snaplen, PG_IOCTL_MAGIC, ioctl_nr::SET_SNAPLEN, u32);
    nix::ioctl_write_ptr!(
        set_interest,
        PG_IOCTL_MAGIC,
        ioctl_nr::SET_INTEREST,
        pg_syscall_mask
    );
    nix::ioctl_write_ptr!(
        set_sampling,
        PG_IOCTL_MAGIC,
        ioctl_nr::SET_SAMPLING,
        pg_sampling
    );
    nix::ioctl_read!(
        get_buffer_size,
        PG_IOCTL_MAGIC,
        ioctl_nr::GET_BUFFER_SIZE,
        u64
    );
}

/// What to open and how to set the module up.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// Where the `peregrine<cpu>` nodes are.
    pub device_dir: PathBuf,
    /// The kernel's list of possible CPUs ("0-3,6").
    pub possible_cpus: PathBuf,
    pub snaplen: Option<u32>,
    /// Syscall numbers whose events are written; None leaves the module's.
    pub interest: Option<BTreeSet<u32>>,
    /// One syscall in `ratio` kept (a power of two; 0 or 1 = all).
    pub sampling_ratio: Option<u32>,
}

impl Default for DriverConfig {
    fn default() -> DriverConfig {
        DriverConfig {
            device_dir: PathBuf::from("/dev"),
            possible_cpus: PathBuf::from("/sys/devices/system/cpu/possible"),
            snaplen: None,
            interest: None,
            sampling_ratio: None,
        }
    }
}

/// Why the devices could not be opened or driven.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("cannot read the possible CPUs from {path}: {source}")]
    PossibleCpus { path: PathBuf, source: io::Error },
    #[error("{path}: cannot parse the CPU list {text:?}")]
    CpuList { path: PathBuf, text: String },
    #[error(
        "{path} does not exist ({source}): is the peregrine module loaded? \
         Load it with `insmod peregrine.ko` (or `modprobe peregrine`)"
    )]
    ModuleNotLoaded { path: PathBuf, source: io::Error },
    #[error("{path} is busy: another process is reading it (each device allows one reader)")]
    Busy { path: PathBuf },
    #[error("{path}: permission denied ({source}); reading the devices needs root")]
    PermissionDenied { path: PathBuf, source: io::Error },
    #[error("cannot open {path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("{path}: ioctl {request} failed: {errno} ({})", errno.desc())]
    Ioctl {
        path: PathBuf,
        request: &'static str,
        errno: Errno,
    },
    #[error(
        "{path}: the loaded module speaks ABI {module} but this program speaks {ours}; \
         the major versions differ, load a peregrine.ko built from the same sources"
    )]
    VersionMismatch {
        path: PathBuf,
        module: ApiVersion,
        ours: ApiVersion,
    },
    #[error("{path}: mmap of {len} bytes failed: {source}")]
    Mmap {
        path: PathBuf,
        len: u64,
        source: io::Error,
    },
    #[error(transparent)]
    BufferSize(#[from] BadBufferSize),
    #[error(
        "{path}: GET_BUFFER_SIZE says {ioctl} bytes but the mapped info page says {info_page}"
    )]
    InfoPageMismatch {
        path: PathBuf,
        ioctl: u64,
        info_page: u64,
    },
    #[error("no peregrine device is open")]
    NoDevices,
    #[error("syscall number {nr} is outside the interest set (0..{PG_SYSCALL_NR_MAX})")]
    SyscallOutOfRange { nr: u32 },
    #[error("sampling ratio {0} must be 0, 1 or a power of two")]
    BadSamplingRatio(u32),
    #[error("snaplen {0} is larger than the module's maximum {PG_MAX_SNAPLEN}")]
    BadSnaplen(u32),
}

/// One opened `/dev/peregrine<cpu>`.
#[derive(Debug)]
struct Device {
    path: PathBuf,
    file: File,
}

impl Device {
    fn open(path: PathBuf) -> Result<Device, DriverError> {
        match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(file) => Ok(Device { path, file }),
            Err(source) => Err(match Errno::from_raw(source.raw_os_error().unwrap_or(0)) {
                Errno::ENOENT | Errno::ENODEV | Errno::ENXIO => {
                    DriverError::ModuleNotLoaded { path, source }
                }
                Errno::EBUSY => DriverError::Busy { path },
                Errno::EACCES | Errno::EPERM => DriverError::PermissionDenied { path, source },
                _ => DriverError::Open { path, source },
            }),
        }
    }

    fn ioctl(
        &self,
        request: &'static str,
        call: impl FnOnce(libc::c_int) -> nix::Result<libc::c_int>,
    ) -> Result<(), DriverError> {
        call(self.file.as_raw_fd())
            .map(drop)
            .map_err(|errno| DriverError::Ioctl {
                path: self.path.clone(),
                request,
                errno,
            })
    }

    fn api_version(&self) -> Result<ApiVersion, DriverError> {
        let mut raw = 0u64;
        // SAFETY: the fd is our open device; `raw` is a live u64, the size
        // the request code announces for the kernel to write.
        self.ioctl("GET_API_VERSION", |fd| unsafe {
            ioctls::get_api_version(fd, &mut raw)
        })?;
        Ok(ApiVersion::from_raw(raw))
    }

    fn buffer_size(&self) -> Result<u64, DriverError> {
        let mut size = 0u64;
        // SAFETY: as for GET_API_VERSION: a live u64 for the kernel to write.
        self.ioctl("GET_BUFFER_SIZE", |fd| unsafe {
            ioctls::get_buffer_size(fd, &mut size)
        })?;
        Ok(size)
    }

    fn map_ring(&self, cpu: usize, buffer_size: u64) -> Result<Ring, DriverError> {
        let len = abi::mmap_len(buffer_size);
        let mmap_err = |source| DriverError::Mmap {
            path: self.path.clone(),
            len,
            source,
        };
        let len_usize = usize::try_from(len)
            .map_err(|_| mmap_err(io::Error::from(io::ErrorKind::InvalidInput)))?;
        let map = memmap2::MmapOptions::new()
            .len(len_usize)
            .map_raw(&self.file)
            .map_err(mmap_err)?;
        let base = NonNull::new(map.as_mut_ptr())
            .ok_or_else(|| mmap_err(io::Error::from(io::ErrorKind::InvalidData)))?;
        // SAFETY: `base` is the module's mapping of mmap_len(buffer_size)
        // bytes with the ABI's layout (info page, data twice), kept alive by
        // `map` inside the Ring; this process holds the device exclusively,
        // so the Ring is the only one storing tail.
        let ring = unsafe {
            Ring::from_mapping(
                base,
                buffer_size,
                cpu,
                self.path.display().to_string(),
                Backing::Device(map),
            )
        }?;
        Ok(ring)
    }
}

/// All the rings of the kernel module, opened and mapped.
pub struct Driver {
    // Declared first so the rings are unmapped before the devices close.
    reader: MergedReader,
    devices: Vec<Device>,
    module_version: ApiVersion,
}

impl Driver {
    /// Opens `/dev/peregrine<cpu>` for every possible CPU, checks the
    /// module's ABI version, maps every ring and applies `config`.
    /// Capture is not started: call [`Driver::start_capture`].
    pub fn open(config: DriverConfig) -> Result<Driver, DriverError> {
        let cpus = possible_cpus(&config.possible_cpus)?;
        let prefix = String::from_utf8_lossy(
            PG_DEVICE_PREFIX
                .strip_suffix(b"\0")
                .unwrap_or(PG_DEVICE_PREFIX),
        );
        let mut devices = Vec::with_capacity(cpus.len());
        let mut rings = Vec::with_capacity(cpus.len());
        let mut module_version = ApiVersion::OURS;
        for cpu in cpus {
            let device = Device::open(config.device_dir.join(format!("{prefix}{cpu}")))?;
            module_version = device.api_version()?;
            if !module_version.is_compatible_with(ApiVersion::OURS) {
                return Err(DriverError::VersionMismatch {
                    path: device.path.clone(),
                    module: module_version,
                    ours: ApiVersion::OURS,
                });
            }
            let buffer_size = device.buffer_size()?;
            let mut ring = device.map_ring(cpu, buffer_size)?;
            if module_version.has_poll_wakeups() {
                let fd = device
                    .file
                    .try_clone()
                    .map_err(|source| DriverError::Open {
                        path: device.path.clone(),
                        source,
                    })?;
                ring.wake_through(fd.into());
            }
            let advertised = ring.advertised_buffer_size();
            if advertised != buffer_size {
                return Err(DriverError::InfoPageMismatch {
                    path: device.path.clone(),
                    ioctl: buffer_size,
                    info_page: advertised,
                });
            }
            rings.push(ring);
            devices.push(device);
        }
        let driver = Driver {
            reader: MergedReader::new(rings),
            devices,
            module_version,
        };
        if let Some(snaplen) = config.snaplen {
            driver.set_snaplen(snaplen)?;
        }
        if let Some(interest) = &config.interest {
            driver.set_interest(interest)?;
        }
        if let Some(ratio) = config.sampling_ratio {
            driver.set_sampling(ratio)?;
        }
        Ok(driver)
    }

    /// The events of every CPU, merged in timestamp order.
    pub fn events(&mut self) -> &mut MergedReader {
        &mut self.reader
    }

    pub fn module_version(&self) -> ApiVersion {
        self.module_version
    }

    /// Ring size of every CPU's device, in bytes.
    pub fn buffer_sizes(&self) -> Vec<u64> {
        self.reader.rings().iter().map(Ring::buffer_size).collect()
    }

    pub fn stats(&self) -> Stats {
        self.reader.stats()
    }

    pub fn start_capture(&self) -> Result<(), DriverError> {
        let device = self.control()?;
        // SAFETY: the fd is our open device; the request carries no data.
        device.ioctl("START_CAPTURE", |fd| unsafe { ioctls::start_capture(fd) })
    }

    pub fn stop_capture(&self) -> Result<(), DriverError> {
        let device = self.control()?;
        // SAFETY: as for START_CAPTURE.
        device.ioctl("STOP_CAPTURE", |fd| unsafe { ioctls::stop_capture(fd) })
    }

    pub fn set_snaplen(&self, snaplen: u32) -> Result<(), DriverError> {
        if snaplen > PG_MAX_SNAPLEN {
            return Err(DriverError::BadSnaplen(snaplen));
        }
        let device = self.control()?;
        // SAFETY: the kernel reads one u32 from a live local.
        device.ioctl("SET_SNAPLEN", |fd| unsafe {
            ioctls::set_snaplen(fd, &snaplen)
        })
    }

    pub fn set_interest(&self, syscalls: &BTreeSet<u32>) -> Result<(), DriverError> {
        let mask = syscall_mask(syscalls)?;
        let device = self.control()?;
        // SAFETY: the kernel reads one pg_syscall_mask from a live local.
        device.ioctl("SET_INTEREST", |fd| unsafe {
            ioctls::set_interest(fd, &mask)
        })
    }

    pub fn set_sampling(&self, ratio: u32) -> Result<(), DriverError> {
        if ratio > 1 && !ratio.is_power_of_two() {
            return Err(DriverError::BadSamplingRatio(ratio));
        }
        let sampling = pg_sampling {
            sampling_ratio: ratio,
            reserved: 0,
        };
        let device = self.control()?;
        // SAFETY: the kernel reads one pg_sampling from a live local.
        device.ioctl("SET_SAMPLING", |fd| unsafe {
            ioctls::set_sampling(fd, &sampling)
        })
    }

    /// The settings ioctls act on every CPU; any open device takes them.
    fn control(&self) -> Result<&Device, DriverError> {
        self.devices.first().ok_or(DriverError::NoDevices)
    }
}

/// Builds the interest bitmap from syscall numbers.
pub fn syscall_mask(syscalls: &BTreeSet<u32>) -> Result<pg_syscall_mask, DriverError> {
    let mut mask = pg_syscall_mask {
        bits: [0; (PG_SYSCALL_NR_MAX / 64) as usize],
    };
    for &nr in syscalls {
        let word = mask
            .bits
            .get_mut((nr / 64) as usize)
            .filter(|_| nr < PG_SYSCALL_NR_MAX)
            .ok_or(DriverError::SyscallOutOfRange { nr })?;
        *word |= 1u64 << (nr % 64);
    }
    Ok(mask)
}

fn possible_cpus(path: &Path) -> Result<Vec<usize>, DriverError> {
    let text = std::fs::read_to_string(path).map_err(|source| DriverError::PossibleCpus {
        path: path.to_path_buf(),
        source,
    })?;
    parse_cpu_list(&text).ok_or_else(|| DriverError::CpuList {
        path: path.to_path_buf(),
        text: text.clone(),
    })
}

/// Parses the kernel's CPU list format ("0-3,6,8-9").
pub fn parse_cpu_list(text: &str) -> Option<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in text.trim().split(',') {
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (
                a.trim().parse::<usize>().ok()?,
                b.trim().parse::<usize>().ok()?,
            ),
            None => {
                let cpu = part.trim().parse::<usize>().ok()?;
                (cpu, cpu)
            }
        };
        // 1 << 16 CPUs is beyond any kernel's NR_CPUS: refuse absurd ranges.
        if first > last || last >= 1 << 16 {
            return None;
        }
        cpus.extend(first..=last);
    }
    Some(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pg-driver-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn config_for(dir: &Path, cpus: &str) -> DriverConfig {
        let possible = dir.join("possible");
        std::fs::write(&possible, cpus).unwrap();
        DriverConfig {
            device_dir: dir.to_path_buf(),
            possible_cpus: possible,
            ..Default::default()
        }
    }

    #[test]
    fn cpu_lists_parse_like_the_kernel_writes_them() {
        assert_eq!(parse_cpu_list("0-3\n"), Some(vec![0, 1, 2, 3]));
        assert_eq!(parse_cpu_list("0,2-3,7"), Some(vec![0, 2, 3, 7]));
        assert_eq!(parse_cpu_list("5"), Some(vec![5]));
        assert_eq!(parse_cpu_list(""), None);
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("0-x"), None);
        assert_eq!(parse_cpu_list("0-99999999"), None);
    }

    #[test]
    fn interest_mask_sets_one_bit_per_syscall() {
        let mask = syscall_mask(&BTreeSet::from([0, 59, 64, 511])).unwrap();
        assert_eq!(mask.bits[0], 1 | (1 << 59));
        assert_eq!(mask.bits[1], 1);
        assert_eq!(mask.bits[7], 1 << 63);
        assert_eq!(mask.bits[2..7], [0; 5]);
        assert!(matches!(
            syscall_mask(&BTreeSet::from([512])),
            Err(DriverError::SyscallOutOfRange { nr: 512 })
        ));
    }

    #[test]
    fn missing_device_says_module_not_loaded() {
        let dir = scratch_dir("missing");
        let err = Driver::open(config_for(&dir, "0-1")).err().unwrap();
        assert!(
            matches!(err, DriverError::ModuleNotLoaded { .. }),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains(&dir.join("peregrine0").display().to_string()),
            "{msg}"
        );
        assert!(msg.contains("insmod"), "{msg}");
    }

    #[test]
    fn a_node_that_is_not_our_device_fails_the_version_ioctl_by_name() {
        let dir = scratch_dir("notty");
        std::fs::write(dir.join("peregrine0"), b"not a device").unwrap();
        let err = Driver::open(config_for(&dir, "0")).err().unwrap();
        match &err {
            DriverError::Ioctl {
                path,
                request,
                errno,
            } => {
                assert_eq!(path, &dir.join("peregrine0"));
                assert_eq!(*request, "GET_API_VERSION");
                assert_eq!(*errno, Errno::ENOTTY);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(err.to_string().contains("ENOTTY"), "{err}");
    }

    #[test]
    fn unreadable_cpu_list_is_reported_with_its_path() {
        let dir = scratch_dir("nocpus");
        let config = DriverConfig {
            device_dir: dir.clone(),
            possible_cpus: dir.join("absent"),
            ..Default::default()
        };
        let err = Driver::open(config).err().unwrap();
        assert!(err.to_string().contains("absent"), "{err}");
        let err = Driver::open(config_for(&dir, "zero")).err().unwrap();
        assert!(matches!(err, DriverError::CpuList { .. }), "{err:?}");
    }

    #[test]
    fn version_mismatch_names_both_versions() {
        // A module one major version ahead of this build.
        let major = u64::from(ApiVersion::OURS.major) + 1;
        let module = ApiVersion::from_raw(major << 32 | 1 << 16);
        assert!(!module.is_compatible_with(ApiVersion::OURS));
        let err = DriverError::VersionMismatch {
            path: PathBuf::from("/dev/peregrine0"),
            module,
            ours: ApiVersion::OURS,
        };
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("{major}.1.0")) && msg.contains(&ApiVersion::OURS.to_string()),
            "{msg}"
        );
        assert!(msg.contains("/dev/peregrine0"), "{msg}");
    }
}
