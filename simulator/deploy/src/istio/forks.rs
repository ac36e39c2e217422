//! The forks as Kubernetes objects: for each fork of each sandbox, a
//! Deployment named as the fork's destination host, its pods labelled
//! `app=<service>` and `laneway.io/sandbox=<key>`, and a Service of the
//! same name selecting them on the service's port. That Service is what
//! the rewritten `:authority` names, so Istio routes the fork's calls to
//! these pods.
//!
//! A destination host is read as Kubernetes names it: `NAME`,
//! `NAME.NAMESPACE` or `NAME.NAMESPACE.svc[.DOMAIN]`. A fork whose host is
//! not of that form, or whose key or service cannot be a label value, is
//! left out and said so in the file's header; two forks with one host are
//! one Deployment (the first in key order).
//!
//! With inline headers, each fork's pods carry the
//! `sidecar.istio.io/bootstrapOverride` annotation naming the
//! inline-headers ConfigMap of their namespace: they run the sidecar
//! plugin, whose configuration then says `joined`.

use std::collections::BTreeSet;

use serde_json::json;

use super::{Render, dns_label_problem, escape};

/// The label that names a fork's sandbox.
pub const SANDBOX_LABEL: &str = "laneway.io/sandbox";

const ABOUT: &str = "\
# The forks of each sandbox: a Deployment named as the fork's destination
# host, its pods labelled app=<service> and laneway.io/sandbox=<key>, and a
# Service of that name selecting them on the service's port (named http, so
# Istio routes it as HTTP). The image stands for what the sandbox's change
# built (--fork-image).
#
# Caution: a baseline Service that selects only app=<service> selects these
# pods too, and sends untagged requests to the fork. Give the baseline's
# pods and selector a label the forks do not have.
";

/// `forks.yaml`.
pub(super) fn file(r: &Render) -> (String, String) {
    let s = r.scenario;
    let mut forks: Vec<(&str, &laneway_scenario::ForkModel)> = s
        .sandboxes
        .iter()
        .flat_map(|b| b.forks.iter().map(move |f| (b.key.as_str(), f)))
        .collect();
    forks.sort_by(|a, b| (a.0, &a.1.destination_host).cmp(&(b.0, &b.1.destination_host)));
    let mut docs = Vec::new();
    let mut notes = String::new();
    let mut seen = BTreeSet::new();
    for (key, fork) in forks {
        let service = &s.services[fork.service];
        let (name, namespace) = match object_name(&fork.destination_host, &r.options.namespace)
            .and_then(|n| labels_problem(&service.name, key).map_or(Ok(n), Err))
        {
            Ok(n) => n,
            Err(why) => {
                notes.push_str(&format!(
                    "# left out: the fork of {} for {}: {why}\n",
                    escape(&service.name),
                    escape(key)
                ));
                continue;
            }
        };
        if !seen.insert((namespace.clone(), name.clone())) {
            continue;
        }
        let port = service.port;
        if let Some(p) = port_of(&fork.destination)
            && p != port
        {
            notes.push_str(&format!(
                "# note: {} names port {p}; a sidecar routes a call by the port it was\n\
                 #   sent to ({port}), where no host {}:{p} is: the Service listens on {port}\n",
                escape(&fork.destination),
                escape(&name),
            ));
        }
        let labels = json!({"app": service.name, SANDBOX_LABEL: key});
        let metadata = json!({"name": name, "namespace": namespace, "labels": labels});
        let image = r
            .options
            .fork_image
            .replace("{service}", &service.name.to_ascii_lowercase())
            .replace("{key}", key);
        docs.push(json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": metadata,
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": pod_metadata(r, &labels),
                    "spec": {"containers": [{
                        "name": container_name(&service.name),
                        "image": image,
                        "ports": [{"name": "http", "containerPort": port}],
                    }]},
                },
            },
        }));
        docs.push(json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": metadata,
            "spec": {
                "selector": labels,
                "ports": [{"name": "http", "port": port, "targetPort": port}],
            },
        }));
    }
    let about = if notes.is_empty() {
        ABOUT.to_owned()
    } else {
        format!("{ABOUT}#\n{notes}")
    };
    r.file("forks.yaml", &about, &docs)
}

/// The pods' metadata: their labels, and with inline headers the
/// bootstrap override.
fn pod_metadata(r: &Render, labels: &serde_json::Value) -> serde_json::Value {
    let mut m = json!({"labels": labels});
    if r.options.inline_headers {
        m["annotations"] =
            json!({super::inline_headers::ANNOTATION: super::inline_headers::CONFIG_MAP});
    }
    m
}

/// The namespaces the forks' Deployments are rendered in.
pub(super) fn namespaces(r: &Render) -> BTreeSet<String> {
    r.scenario
        .sandboxes
        .iter()
        .flat_map(|b| b.forks.iter().map(move |f| (b.key.as_str(), f)))
        .filter(|(key, f)| labels_problem(&r.scenario.services[f.service].name, key).is_none())
        .filter_map(|(_, f)| object_name(&f.destination_host, &r.options.namespace).ok())
        .map(|(_, ns)| ns)
        .collect()
}

/// `(name, namespace)` of the Service a host names, or why it names none.
fn object_name(host: &str, namespace: &str) -> Result<(String, String), String> {
    let labels: Vec<&str> = host.split('.').collect();
    let (name, ns) = match labels.as_slice() {
        [name] => (*name, namespace),
        [name, ns] => (*name, *ns),
        [name, ns, "svc", ..] => (*name, *ns),
        _ => {
            return Err(format!(
                "host {} is not NAME, NAME.NAMESPACE or NAME.NAMESPACE.svc...",
                escape(host)
            ));
        }
    };
    if let Some(why) = dns_label_problem(name, 63) {
        return Err(format!("{} as a Service name {why}", escape(name)));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(format!(
            "{} as a Service name must start with a letter",
            escape(name)
        ));
    }
    if let Some(why) = dns_label_problem(ns, 63) {
        return Err(format!("{} as a namespace {why}", escape(ns)));
    }
    Ok((name.to_owned(), ns.to_owned()))
}

/// Why the service or the key cannot be a label value, if one cannot.
fn labels_problem(service: &str, key: &str) -> Option<String> {
    [("service", service), ("key", key)]
        .into_iter()
        .find(|(_, v)| !is_label_value(v))
        .map(|(what, v)| {
            format!(
                "{what} {} is not a label value (at most 63 of A-Z a-z 0-9 - _ ., alphanumeric at both ends)",
                escape(v)
            )
        })
}

/// Whether `v` is a Kubernetes label value.
fn is_label_value(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && b.first().is_none_or(u8::is_ascii_alphanumeric)
        && b.last().is_none_or(u8::is_ascii_alphanumeric)
}

/// The port a fork's destination names, if it names one.
fn port_of(destination: &str) -> Option<u16> {
    destination.rsplit_once(':')?.1.parse().ok()
}

/// The container's name: the service's, if it is a DNS label, else `fork`.
fn container_name(service: &str) -> String {
    let lower = service.to_ascii_lowercase();
    if dns_label_problem(&lower, 63).is_none() {
        lower
    } else {
        "fork".into()
    }
}
