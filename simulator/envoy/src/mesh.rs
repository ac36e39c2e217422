//! A HotROD-like mesh on loopback: one Envoy outbound sidecar running a
//! wasm module, in front of one upstream per workload.
//!
//! The workloads come from the plugin configuration: each forked service
//! and each extra baseline host gets a `host@baseline` workload, each fork
//! a `service@fork(key)` workload behind the fork's destination host (names
//! are [`WorkloadName`]s), and
//! hosts no virtual host knows reach `unknown-host`. Used by the
//! end-to-end tests and by `laneway demo-envoy`.

use std::net::SocketAddr;
use std::path::Path;

use laneway_core::Config;
use laneway_scenario::WorkloadName;

use super::bootstrap::{self, AccessLog, Filter, Sidecar, Target, VirtualHost};
use super::client::{self, Response};
use super::upstream::Upstreams;
use super::{Envoy, EnvoyError};

/// The workload answering hosts no virtual host knows.
pub const UNKNOWN_HOST: &str = "unknown-host";

/// A running sidecar and its upstreams; both stop on drop.
pub struct Mesh {
    /// The sidecar.
    pub envoy: Envoy,
    /// The upstream workloads.
    pub upstreams: Upstreams,
    /// The sidecar's outbound listener.
    pub listener: SocketAddr,
}

impl Mesh {
    /// Starts upstreams and a sidecar running `module` with `config_text`.
    /// `extra_hosts` are baseline services the configuration does not fork.
    pub fn start(
        module: &Path,
        config_text: &str,
        extra_hosts: &[&str],
        access_log: Option<&Path>,
    ) -> Result<Mesh, EnvoyError> {
        let config = Config::from_json(config_text)
            .map_err(|e| EnvoyError::Io(format!("invalid plugin configuration: {e}")))?;
        let mut hosts: Vec<(String, String)> = Vec::new();
        let mut add = |host: &str, workload: String| {
            if !hosts.iter().any(|(h, _)| h.eq_ignore_ascii_case(host)) {
                hosts.push((host.to_ascii_lowercase(), workload));
            }
        };
        for host in extra_hosts {
            add(host, WorkloadName::baseline(host).to_string());
        }
        for sandbox in &config.sandboxes {
            for fork in &sandbox.forks {
                add(
                    &fork.service,
                    WorkloadName::baseline(&fork.service).to_string(),
                );
                let dest = laneway_core::authority::host(fork.destination.as_bytes());
                let service = fork.service.to_ascii_lowercase();
                add(
                    &String::from_utf8_lossy(dest),
                    WorkloadName::fork(&service, &sandbox.key).to_string(),
                );
            }
        }
        let workloads: Vec<&str> = hosts
            .iter()
            .map(|(_, w)| w.as_str())
            .chain([UNKNOWN_HOST])
            .collect();
        let upstreams =
            Upstreams::start(&workloads).map_err(|e| EnvoyError::Io(format!("upstreams: {e}")))?;
        let target = |w: &str| Target::Upstream(upstreams.addr(w).expect("started above"));
        let mut virtual_hosts: Vec<VirtualHost> = hosts
            .iter()
            .map(|(h, w)| VirtualHost::to(h, target(w)))
            .collect();
        virtual_hosts.push(VirtualHost::to("*", target(UNKNOWN_HOST)));
        let mut sidecar = Sidecar::new(
            Filter::Wasm {
                module,
                configuration: config_text,
            },
            virtual_hosts,
        );
        if let Some(path) = access_log {
            sidecar.access_log = AccessLog::File(path);
        }
        let envoy = Envoy::start(&bootstrap::sidecar(&sidecar))?;
        let listener = envoy
            .listener(bootstrap::LISTENER)
            .ok_or_else(|| EnvoyError::Io("envoy reports no outbound listener".into()))?;
        Ok(Mesh {
            envoy,
            upstreams,
            listener,
        })
    }

    /// Sends `GET /` through the sidecar with these header lines.
    pub fn send(&self, headers: &[(&str, &[u8])]) -> std::io::Result<Response> {
        client::get(self.listener, "/", headers)
    }
}
