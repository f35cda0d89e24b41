//! The runtimes to ask and their sockets, in the shape of the `init_config`
//! of Falco's container plugin, read from the `plugins` entry named
//! `container`. Without one, Falco 0.40's `container_engines` says which
//! engines are on; without either, every engine is on at its default
//! sockets, as the plugin's are. Sockets are host paths: under `HOST_ROOT`
//! when Peregrine runs in a container.

use super::EngineKind;
use serde::Deserialize;
use serde_yaml::Value as Yaml;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ContainerConfigError {
    #[error("plugins[{index}] (container): init_config: {message}")]
    Invalid { index: usize, message: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// None: the engine's default sockets.
    #[serde(default)]
    pub sockets: Option<Vec<String>>,
}

fn yes() -> bool {
    true
}

impl EngineConfig {
    fn on() -> EngineConfig {
        EngineConfig {
            enabled: true,
            sockets: None,
        }
    }

    fn off() -> EngineConfig {
        EngineConfig {
            enabled: false,
            sockets: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Engines {
    pub docker: EngineConfig,
    pub podman: EngineConfig,
    pub containerd: EngineConfig,
    pub cri: EngineConfig,
    /// Engines without a socket API (their containers are named from the
    /// cgroups alone): accepted so the plugin's configs load.
    pub lxc: EngineConfig,
    pub libvirt_lxc: EngineConfig,
    pub bpm: EngineConfig,
}

impl Default for Engines {
    fn default() -> Self {
        Engines {
            docker: EngineConfig::on(),
            podman: EngineConfig::on(),
            containerd: EngineConfig::on(),
            cri: EngineConfig::on(),
            lxc: EngineConfig::off(),
            libvirt_lxc: EngineConfig::off(),
            bpm: EngineConfig::off(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContainerConfig {
    /// Labels with longer values are left out.
    pub label_max_len: usize,
    /// Accepted for the plugin's configs; sizes are not looked up.
    pub with_size: bool,
    /// Accepted for the plugin's configs: containers are looked up when
    /// first seen, and docker's and podman's start events prefetch them.
    pub hooks: Vec<String>,
    /// Accepted for the plugin's configs: every connect and lookup here
    /// is bounded at 5 s, and none happens at startup on the event path.
    pub engine_timeout: u64,
    pub engines: Engines,
}

impl Default for ContainerConfig {
    fn default() -> Self {
        ContainerConfig {
            label_max_len: 100,
            with_size: false,
            hooks: vec!["create".into()],
            engine_timeout: 10,
            engines: Engines::default(),
        }
    }
}

/// Falco 0.40's `container_engines` (lxc, libvirt_lxc, bpm and
/// `cri.disable_async` are set aside by the config loader: they have no
/// effect here). An engine left out is on, as in Falco 0.40.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LegacyEngines {
    pub docker: LegacySwitch,
    pub podman: LegacySwitch,
    pub cri: LegacyCri,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LegacySwitch {
    #[serde(default = "yes")]
    pub enabled: bool,
}

impl Default for LegacySwitch {
    fn default() -> Self {
        LegacySwitch { enabled: true }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LegacyCri {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Empty: the default sockets (Falco 0.40 falls back to them too).
    #[serde(default)]
    pub sockets: Vec<String>,
}

impl Default for LegacyCri {
    fn default() -> Self {
        LegacyCri {
            enabled: true,
            sockets: Vec::new(),
        }
    }
}

impl LegacyEngines {
    /// The plugin's engines these stand for. Falco 0.40's `cri` switched
    /// on both its CRI clients and its containerd client (containerd's own
    /// API at the bottlerocket host socket), so `cri` maps onto both.
    pub fn engines(&self) -> Engines {
        let switch = |enabled: bool| EngineConfig {
            enabled,
            sockets: None,
        };
        Engines {
            docker: switch(self.docker.enabled),
            podman: switch(self.podman.enabled),
            containerd: switch(self.cri.enabled),
            cri: EngineConfig {
                enabled: self.cri.enabled,
                sockets: (!self.cri.sockets.is_empty()).then(|| self.cri.sockets.clone()),
            },
            ..Engines::default()
        }
    }
}

impl ContainerConfig {
    /// The engines of a falco.yaml: the container plugin's entry when
    /// there is one that `load_plugins` selects (Falco 0.41 and later read
    /// nothing else), else Falco 0.40's `container_engines`, else every
    /// engine at its defaults.
    pub fn from_falco(
        plugins: &[Yaml],
        load_plugins: Option<&[String]>,
        legacy: Option<&LegacyEngines>,
    ) -> Result<ContainerConfig, ContainerConfigError> {
        if plugin_entry(plugins).is_some() && !selects_container(load_plugins) {
            return Ok(match legacy {
                Some(legacy) => ContainerConfig {
                    engines: legacy.engines(),
                    ..ContainerConfig::default()
                },
                None => ContainerConfig::default(),
            });
        }
        match (plugin_entry(plugins), legacy) {
            (None, Some(legacy)) => Ok(ContainerConfig {
                engines: legacy.engines(),
                ..ContainerConfig::default()
            }),
            _ => ContainerConfig::from_plugins(plugins),
        }
    }

    /// The config of the `container` entry of `plugins` (the defaults
    /// without one). A bad entry is an error naming the key.
    pub fn from_plugins(plugins: &[Yaml]) -> Result<ContainerConfig, ContainerConfigError> {
        let Some((index, entry)) = plugin_entry(plugins) else {
            return Ok(ContainerConfig::default());
        };
        let invalid = |message: String| ContainerConfigError::Invalid { index, message };
        let init = match entry.get("init_config") {
            None | Some(Yaml::Null) => return Ok(ContainerConfig::default()),
            // Falco also takes init_config as a JSON (or YAML) string.
            Some(Yaml::String(text)) if text.trim().is_empty() => {
                return Ok(ContainerConfig::default())
            }
            Some(Yaml::String(text)) => serde_yaml::from_str::<Yaml>(text)
                .map_err(|e| invalid(format!("not JSON or YAML: {e}")))?,
            Some(other) => other.clone(),
        };
        serde_path_to_error::deserialize(init).map_err(|e| {
            let key = e.path().to_string();
            invalid(format!("key '{key}': {}", e.inner()))
        })
    }

    /// Every socket to ask, in order of preference, as seen from here.
    pub fn sockets(&self) -> Vec<(EngineKind, PathBuf)> {
        let mut out = Vec::new();
        let e = &self.engines;
        for (kind, engine, defaults) in [
            (EngineKind::Docker, &e.docker, docker_defaults()),
            (EngineKind::Podman, &e.podman, podman_defaults()),
            (EngineKind::Containerd, &e.containerd, containerd_defaults()),
            (EngineKind::Cri, &e.cri, cri_defaults()),
        ] {
            if !engine.enabled {
                continue;
            }
            for socket in engine.sockets.clone().unwrap_or(defaults) {
                let socket = socket.trim_start_matches("unix://");
                let path = crate::host::path(socket);
                if !out.iter().any(|(k, p)| *k == kind && *p == path) {
                    out.push((kind, path));
                }
            }
        }
        out
    }
}

/// Whether `load_plugins` loads the container plugin: Falco loads every
/// entry of `plugins` when the key is absent, only those it names when
/// it is given (its own falco.yaml has `load_plugins: []`, and a drop-in
/// file of its packages names the container plugin).
pub fn selects_container(load_plugins: Option<&[String]>) -> bool {
    match load_plugins {
        None => true,
        Some(names) => names.iter().any(|n| n == "container"),
    }
}

/// The `plugins` entry of the container plugin, with its index.
pub fn plugin_entry(plugins: &[Yaml]) -> Option<(usize, &Yaml)> {
    plugins
        .iter()
        .enumerate()
        .find(|(_, p)| p.get("name").and_then(Yaml::as_str) == Some("container"))
}

fn docker_defaults() -> Vec<String> {
    vec!["/var/run/docker.sock".into()]
}

/// Root's podman socket and each user's (`/run/user/UID`).
fn podman_defaults() -> Vec<String> {
    let mut sockets = vec!["/run/podman/podman.sock".to_string()];
    if let Ok(users) = std::fs::read_dir(crate::host::path("/run/user")) {
        let mut uids: Vec<u32> = users
            .flatten()
            .filter_map(|d| d.file_name().to_str()?.parse().ok())
            .collect();
        uids.sort_unstable();
        sockets.extend(
            uids.into_iter()
                .map(|uid| format!("/run/user/{uid}/podman/podman.sock")),
        );
    }
    sockets
}

fn containerd_defaults() -> Vec<String> {
    vec!["/run/host-containerd/containerd.sock".into()]
}

fn cri_defaults() -> Vec<String> {
    [
        "/run/containerd/containerd.sock",
        "/run/crio/crio.sock",
        "/run/k3s/containerd/containerd.sock",
        "/run/host-containerd/containerd.sock",
    ]
    .map(String::from)
    .to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugins(yaml: &str) -> Vec<Yaml> {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn no_entry_means_every_engine_at_its_default_sockets() {
        let c = ContainerConfig::from_plugins(&[]).unwrap();
        assert_eq!(c, ContainerConfig::default());
        let sockets = c.sockets();
        assert_eq!(
            sockets[0],
            (EngineKind::Docker, PathBuf::from("/var/run/docker.sock"))
        );
        assert!(sockets.contains(&(EngineKind::Cri, PathBuf::from("/run/crio/crio.sock"))));
    }

    #[test]
    fn the_plugins_init_config_chooses_engines_and_sockets() {
        let c = ContainerConfig::from_plugins(&plugins(
            "- name: json\n- name: container\n  library_path: libcontainer.so\n  init_config:\n    label_max_len: 20\n    engines:\n      docker: {enabled: true, sockets: ['unix:///tmp/d.sock']}\n      podman: {enabled: false}\n      containerd: {enabled: false}\n      cri: {enabled: true, sockets: [/tmp/c.sock]}\n      bpm: {enabled: false}\n",
        ))
        .unwrap();
        assert_eq!(c.label_max_len, 20);
        assert_eq!(
            c.sockets(),
            [
                (EngineKind::Docker, PathBuf::from("/tmp/d.sock")),
                (EngineKind::Cri, PathBuf::from("/tmp/c.sock")),
            ]
        );
    }

    #[test]
    fn init_config_may_be_a_json_string() {
        let c = ContainerConfig::from_plugins(&plugins(
            "- name: container\n  init_config: '{\"engines\": {\"docker\": {\"enabled\": false}}}'\n",
        ))
        .unwrap();
        assert!(!c.engines.docker.enabled);
        assert!(c.engines.podman.enabled);
    }

    fn legacy(yaml: &str) -> LegacyEngines {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn falco_040_engines_map_onto_the_plugins() {
        let old =
            legacy("docker: {enabled: false}\ncri: {enabled: true, sockets: [/tmp/cri.sock]}\n");
        let c = ContainerConfig::from_falco(&[], None, Some(&old)).unwrap();
        assert!(!c.engines.docker.enabled);
        assert!(c.engines.podman.enabled, "an engine left out is on");
        let sockets = c.sockets();
        assert!(sockets.contains(&(EngineKind::Cri, PathBuf::from("/tmp/cri.sock"))));
        assert!(
            !sockets
                .iter()
                .any(|(k, p)| *k == EngineKind::Cri && p.ends_with("crio.sock")),
            "the CRI sockets given replace the defaults: {sockets:?}"
        );
        // Falco 0.40's cri switch also ran its containerd client.
        assert!(sockets.contains(&(
            EngineKind::Containerd,
            PathBuf::from("/run/host-containerd/containerd.sock")
        )));
        let off = legacy("cri: {enabled: false}\n");
        let c = ContainerConfig::from_falco(&[], None, Some(&off)).unwrap();
        assert!(!c
            .sockets()
            .iter()
            .any(|(k, _)| matches!(k, EngineKind::Cri | EngineKind::Containerd)));
        // No sockets: the defaults, as Falco 0.40 falls back to them.
        let c =
            ContainerConfig::from_falco(&[], None, Some(&legacy("cri: {sockets: []}\n"))).unwrap();
        assert_eq!(c, ContainerConfig::default());
    }

    #[test]
    fn the_plugins_entry_wins_over_falco_040_engines() {
        let old = legacy("docker: {enabled: false}\n");
        let c = ContainerConfig::from_falco(
            &plugins(
                "- name: container\n  init_config:\n    engines:\n      podman: {enabled: false}\n",
            ),
            None,
            Some(&old),
        )
        .unwrap();
        assert!(c.engines.docker.enabled);
        assert!(!c.engines.podman.enabled);
        // An entry without init_config: the plugin's defaults, not the old key.
        let c =
            ContainerConfig::from_falco(&plugins("- name: container\n"), None, Some(&old)).unwrap();
        assert_eq!(c, ContainerConfig::default());
    }

    #[test]
    fn an_entry_load_plugins_leaves_out_configures_nothing() {
        let entry = plugins(
            "- name: container\n  init_config:\n    engines:\n      podman: {enabled: false}\n",
        );
        let loaded = ["container".to_string()];
        let c = ContainerConfig::from_falco(&entry, Some(&loaded), None).unwrap();
        assert!(
            !c.engines.podman.enabled,
            "selected: its init_config applies"
        );
        // Falco's own falco.yaml: `load_plugins: []`, the entry unused.
        let c = ContainerConfig::from_falco(&entry, Some(&[]), None).unwrap();
        assert_eq!(c, ContainerConfig::default());
        let old = legacy("docker: {enabled: false}\n");
        let others = ["k8saudit".to_string()];
        let c = ContainerConfig::from_falco(&entry, Some(&others), Some(&old)).unwrap();
        assert!(!c.engines.docker.enabled, "then Falco 0.40's key applies");
        assert!(c.engines.podman.enabled);
    }

    #[test]
    fn a_misspelt_key_is_an_error_naming_it() {
        let e = ContainerConfig::from_plugins(&plugins(
            "- name: container\n  init_config:\n    engines:\n      docker: {enabeld: true}\n",
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("engines.docker"), "{e}");
        assert!(e.contains("enabeld"), "{e}");
    }
}
