//! `peregrine driver status|load|unload`: the insmod workflow without
//! having to remember module paths, parameter names or the ABI version.

use std::ffi::CString;
use std::fs::File;
use std::path::{Path, PathBuf};

use nix::kmod::{delete_module, finit_module, DeleteModuleFlags, ModuleInitFlags};
use peregrine_driver_sys::{abi, Driver, DriverConfig, DriverError};

const MODULE_NAME: &str = "peregrine";

#[derive(Debug, thiserror::Error)]
pub enum DriverCmdError {
    #[error(
        "no {MODULE_NAME}.ko found for kernel {release}; looked in: {looked}. \
         Build it with `make -C kmod` (or install it with DKMS) or pass --module"
    )]
    ModuleNotFound { release: String, looked: String },
    #[error("cannot open {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("--buffer-size {0} is not a power of two between {min} and {max} bytes", min = abi::PG_MIN_BUFFER_SIZE, max = abi::PG_MAX_BUFFER_SIZE)]
    BadBufferSize(u64),
    #[error("loading {path} failed: {errno} ({})", errno.desc())]
    Load {
        path: PathBuf,
        errno: nix::errno::Errno,
    },
    #[error("unloading {MODULE_NAME} failed: {errno} ({}){hint}", errno.desc())]
    Unload {
        errno: nix::errno::Errno,
        hint: &'static str,
    },
    #[error("the module is loaded but its devices cannot be used: {0}")]
    Device(#[from] DriverError),
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

fn sysfs_module() -> PathBuf {
    Path::new("/sys/module").join(MODULE_NAME)
}

pub fn is_loaded() -> bool {
    sysfs_module().exists()
}

fn parameter(name: &str) -> Option<String> {
    std::fs::read_to_string(sysfs_module().join("parameters").join(name))
        .ok()
        .map(|s| s.trim().to_string())
}

/// Where a module for `release` may be installed: DKMS first, then the
/// places `make modules_install` and distributions use (under
/// `$HOST_ROOT` in a container).
fn module_candidates(release: &str) -> Vec<PathBuf> {
    let base = crate::host::path("/lib/modules").join(release);
    ["updates/dkms", "extra", "updates", "kernel/extra", "misc"]
        .iter()
        .map(|dir| base.join(dir).join(format!("{MODULE_NAME}.ko")))
        .collect()
}

pub fn status() -> Result<String, DriverCmdError> {
    let release = kernel_release();
    let mut report = format!("kernel: {release}\n");
    if !is_loaded() {
        report.push_str("module: not loaded\n");
        let found: Vec<_> = module_candidates(&release)
            .into_iter()
            .filter(|p| p.exists())
            .collect();
        match found.first() {
            Some(path) => report.push_str(&format!(
                "installed: {} (load it with `peregrine driver load`)\n",
                path.display()
            )),
            None => report.push_str("installed: no module for this kernel\n"),
        }
        return Ok(report);
    }
    report.push_str("module: loaded\n");
    for name in ["buffer_size", "snaplen"] {
        if let Some(value) = parameter(name) {
            report.push_str(&format!("parameter {name}: {value}\n"));
        }
    }
    match Driver::open(DriverConfig::default()) {
        Ok(driver) => {
            let version = driver.module_version();
            report.push_str(&format!("module API version: {version}\n"));
            let sizes = driver.buffer_sizes();
            report.push_str(&format!(
                "rings: {} (bytes per CPU: {})\n",
                sizes.len(),
                sizes.first().copied().unwrap_or(0)
            ));
            let stats = driver.stats();
            let t = stats.total;
            report.push_str(&format!(
                "events written: {}; dropped: {} buffer full, {} page faults, {} too large; {} sampled out; {} re-entries skipped\n",
                t.n_evts, t.n_drops_buffer, t.n_drops_pf, t.n_drops_too_large, t.n_drops_sampling, t.n_preemptions
            ));
        }
        Err(DriverError::Busy { .. }) => {
            report.push_str("devices: in use by a running consumer\n");
        }
        Err(e) => return Err(e.into()),
    }
    Ok(report)
}

pub fn load(module: Option<&Path>, buffer_size: Option<u64>) -> Result<String, DriverCmdError> {
    if is_loaded() {
        return Ok(format!("{MODULE_NAME} is already loaded; `peregrine driver unload` first to change its parameters\n"));
    }
    let release = kernel_release();
    let path = match module {
        Some(path) => path.to_path_buf(),
        None => {
            let candidates = module_candidates(&release);
            match candidates.iter().find(|p| p.exists()) {
                Some(path) => path.clone(),
                None => {
                    let looked = candidates
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ");
                    return Err(DriverCmdError::ModuleNotFound { release, looked });
                }
            }
        }
    };
    let mut params = String::new();
    if let Some(size) = buffer_size {
        let in_range = (u64::from(abi::PG_MIN_BUFFER_SIZE)..=u64::from(abi::PG_MAX_BUFFER_SIZE))
            .contains(&size);
        if !size.is_power_of_two() || !in_range {
            return Err(DriverCmdError::BadBufferSize(size));
        }
        params.push_str(&format!("buffer_size={size}"));
    }
    let file = File::open(&path).map_err(|source| DriverCmdError::Open {
        path: path.clone(),
        source,
    })?;
    // A parameter string never holds a NUL: it is built from numbers above.
    let params = CString::new(params).unwrap_or_default();
    finit_module(&file, &params, ModuleInitFlags::empty()).map_err(|errno| {
        DriverCmdError::Load {
            path: path.clone(),
            errno,
        }
    })?;
    let mut report = format!("loaded {}\n", path.display());
    // Check at once that userspace and module agree on the ABI.
    match Driver::open(DriverConfig::default()) {
        Ok(driver) => report.push_str(&format!(
            "module API version: {} ({} rings of {} bytes)\n",
            driver.module_version(),
            driver.buffer_sizes().len(),
            driver.buffer_sizes().first().copied().unwrap_or(0)
        )),
        Err(e) => return Err(e.into()),
    }
    Ok(report)
}

pub fn unload() -> Result<String, DriverCmdError> {
    if !is_loaded() {
        return Ok(format!("{MODULE_NAME} is not loaded\n"));
    }
    let name = CString::new(MODULE_NAME).unwrap_or_default();
    delete_module(&name, DeleteModuleFlags::O_NONBLOCK).map_err(|errno| {
        DriverCmdError::Unload {
            errno,
            hint: if errno == nix::errno::Errno::EWOULDBLOCK || errno == nix::errno::Errno::EBUSY {
                ": a consumer still holds the devices open; stop it first"
            } else {
                ""
            },
        }
    })?;
    Ok(format!("unloaded {MODULE_NAME}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_is_looked_for_where_dkms_and_make_install_put_it() {
        let candidates = module_candidates("6.1.0-56-cloud-amd64");
        assert_eq!(
            candidates[0],
            Path::new("/lib/modules/6.1.0-56-cloud-amd64/updates/dkms/peregrine.ko")
        );
        assert!(candidates.iter().any(|p| p.ends_with("extra/peregrine.ko")));
    }

    #[test]
    fn a_bad_buffer_size_is_refused_before_touching_the_kernel() {
        if is_loaded() {
            eprintln!("skipped: a peregrine module is loaded on this machine");
            return;
        }
        let missing = Path::new("/nonexistent/peregrine.ko");
        let error = load(Some(missing), Some(3 * 1024 * 1024))
            .unwrap_err()
            .to_string();
        assert!(error.contains("not a power of two"), "{error}");
        let error = load(Some(missing), Some(1 << 20)).unwrap_err().to_string();
        assert!(error.contains("/nonexistent/peregrine.ko"), "{error}");
    }
}
