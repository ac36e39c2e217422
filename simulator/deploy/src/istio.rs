//! Istio manifests for a compiled scenario: [`istio`] renders every file,
//! [`IstioOptions`] says where the module is and where the plugins go.
//!
//! Every plugin carries the scenario's plugin configuration
//! ([`Scenario::config`]), the exact JSON the filter gets: parsed and
//! embedded as `pluginConfig` (a `google.protobuf.Struct`, which Istio
//! turns back into JSON for the filter), or verbatim as the EnvoyFilter's
//! `StringValue`.
//!
//! Guarantees:
//! - total: any compiled scenario and any options render, and the same
//!   inputs give the same bytes; [`IstioOptions::validate`] says what Istio
//!   would refuse, before anything is written;
//! - every file opens with [`RENDERED_MARK`], the command that renders it
//!   again, and what the file is for; text from the scenario (its name, its
//!   path) is written with control characters escaped, so it can end no
//!   comment line;
//! - files and the documents in them are sorted: by file name, by
//!   waypoint, by sandbox key and fork host;
//! - `routing_key.joined` is true exactly in the plugins of the proxies
//!   [`IstioOptions::inline_headers`] gives inline headers (the outbound
//!   sidecars of the namespace and the forks), and false everywhere else.

mod envoyfilter;
mod extensions;
mod forks;
mod inline_headers;

use std::collections::BTreeMap;
use std::fmt;

use laneway_scenario::Scenario;
use serde_json::Value;

/// The first words of every rendered file: how a drift check tells a
/// rendered file from a hand-written one.
pub const RENDERED_MARK: &str = "# Rendered by `laneway render istio ";

/// The filter's name in Envoy and its `pluginName` (Envoy's `root_id`).
pub const PLUGIN_NAME: &str = "laneway";

/// The waypoint of a service the options do not name.
pub const DEFAULT_WAYPOINT: &str = "waypoint";

/// Where the EnvoyFilter reads the module when the URL is not `file://`.
pub const DEFAULT_MODULE_FILE: &str = "/var/local/lib/wasm-filters/laneway_filter.wasm";

/// Where the plugins go and where their module comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IstioOptions {
    /// The namespace of the workloads, their WasmPlugin and their forks.
    pub namespace: String,
    /// The ingress gateway's namespace (a selector only reaches workloads
    /// in its own namespace).
    pub gateway_namespace: String,
    /// The module's URL; `None`: `oci://REGISTRY/laneway:VERSION`.
    pub url: Option<String>,
    /// The registry of the default URL.
    pub registry: String,
    /// The tag of the default URL: this build's version.
    pub version: String,
    /// The module's checksum, when known: for `oci://` the image
    /// manifest's digest, for `http(s)://` the module's own sha256.
    pub sha256: Option<String>,
    /// `IfNotPresent` or `Always`.
    pub image_pull_policy: String,
    /// Service name → its waypoint, in an ambient mesh: `Some(name)`, or
    /// `None` for a service with no waypoint. A service not named has the
    /// waypoint [`DEFAULT_WAYPOINT`].
    pub waypoints: BTreeMap<String, Option<String>>,
    /// Each fork's container image; `{service}` and `{key}` are replaced.
    pub fork_image: String,
    /// Where the EnvoyFilter reads the module, on the proxy's filesystem,
    /// unless the URL is `file://`.
    pub module_file: String,
    /// The namespace's sidecars and the forks run with the inline-headers
    /// bootstrap (`bootstrap-inline-headers.yaml`, named by the forks' pod
    /// annotation): their plugins say `routing_key.joined: true`.
    pub inline_headers: bool,
}

impl Default for IstioOptions {
    fn default() -> IstioOptions {
        IstioOptions {
            namespace: "default".into(),
            gateway_namespace: "istio-system".into(),
            url: None,
            registry: "registry.example.com".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            sha256: None,
            image_pull_policy: "IfNotPresent".into(),
            waypoints: BTreeMap::new(),
            fork_image: "registry.example.com/{service}:{key}".into(),
            module_file: DEFAULT_MODULE_FILE.into(),
            inline_headers: false,
        }
    }
}

/// An option Istio or Kubernetes would refuse: which one, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OptionError {
    /// The option, named as the CLI flag (`--url`) or the field.
    pub option: &'static str,
    /// Why.
    pub reason: String,
}

impl fmt::Display for OptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.option, self.reason)
    }
}

impl IstioOptions {
    /// The module's URL.
    pub fn url(&self) -> String {
        self.url
            .clone()
            .unwrap_or_else(|| format!("oci://{}/{PLUGIN_NAME}:{}", self.registry, self.version))
    }

    /// The waypoint of `service`, or `None` if it has none.
    pub fn waypoint_of(&self, service: &str) -> Option<&str> {
        match self.waypoints.get(service) {
            Some(w) => w.as_deref(),
            None => Some(DEFAULT_WAYPOINT),
        }
    }

    /// Where the EnvoyFilter reads the module.
    pub fn module_path(&self) -> &str {
        match &self.url {
            Some(url) => url.strip_prefix("file://").unwrap_or(&self.module_file),
            None => &self.module_file,
        }
    }

    /// The flags that render these options again (empty for the defaults
    /// the CLI cannot change).
    pub fn flags(&self) -> String {
        let d = IstioOptions::default();
        let mut out = String::new();
        if self.namespace != d.namespace {
            out.push_str(&format!(" --namespace {}", self.namespace));
        }
        if let Some(url) = &self.url {
            out.push_str(&format!(" --url {url}"));
        }
        if let Some(sha) = &self.sha256 {
            out.push_str(&format!(" --sha256 {sha}"));
        }
        if self.fork_image != d.fork_image {
            out.push_str(&format!(" --fork-image {}", self.fork_image));
        }
        if self.inline_headers {
            out.push_str(" --inline-headers");
        }
        out
    }

    /// Everything Istio or Kubernetes would refuse in these options, for
    /// this scenario (an empty list: they render manifests that apply).
    pub fn validate(&self, scenario: &Scenario) -> Vec<OptionError> {
        let mut errors = Vec::new();
        let mut error = |option: &'static str, reason: String| {
            errors.push(OptionError { option, reason });
        };
        for (option, ns) in [
            ("--namespace", &self.namespace),
            ("gateway_namespace", &self.gateway_namespace),
        ] {
            if let Some(why) = dns_label_problem(ns, 63) {
                error(option, format!("{}: {why}", escape(ns)));
            }
        }
        let url = self.url();
        if let Some(why) = url_problem(&url) {
            error("--url", why);
        }
        if let Some(sha) = &self.sha256 {
            if !is_sha256(sha) {
                error(
                    "--sha256",
                    format!("{}: not 64 lowercase hex digits", escape(sha)),
                );
            } else if let Some((_, pinned)) = url.split_once("@sha256:")
                && pinned != sha
            {
                error(
                    "--sha256",
                    format!("differs from the digest the URL pins ({})", escape(pinned)),
                );
            }
        }
        if !matches!(self.image_pull_policy.as_str(), "IfNotPresent" | "Always") {
            error(
                "image_pull_policy",
                format!(
                    "{}: not IfNotPresent or Always",
                    escape(&self.image_pull_policy)
                ),
            );
        }
        for (service, waypoint) in &self.waypoints {
            if !scenario.services.iter().any(|s| &s.name == service) {
                error(
                    "waypoints",
                    format!("the scenario has no service {}", escape(service)),
                );
            }
            // The plugin is named `laneway-<waypoint>`, at most 253 bytes.
            if let Some(w) = waypoint
                && let Some(why) = dns_label_problem(w, 253 - PLUGIN_NAME.len() - 1)
            {
                error("waypoints", format!("waypoint {}: {why}", escape(w)));
            }
        }
        if self.fork_image.is_empty() || self.fork_image.chars().any(char::is_whitespace) {
            error(
                "--fork-image",
                format!("{}: empty or has spaces", escape(&self.fork_image)),
            );
        }
        if !self.module_path().starts_with('/') {
            error(
                "module_file",
                format!("{}: not an absolute path", escape(self.module_path())),
            );
        }
        errors
    }
}

/// Renders every Istio manifest for `scenario`: `(file name, YAML)`,
/// sorted by file name; a file may hold several documents.
pub fn istio(scenario: &Scenario, options: &IstioOptions) -> Vec<(String, String)> {
    let config: Value = serde_json::from_str(&scenario.config).unwrap_or(Value::Null);
    let mut sidecar_config = config.clone();
    crate::shapes::set_joined(&mut sidecar_config, options.inline_headers);
    let r = Render {
        scenario,
        options,
        config,
        sidecar_config,
        sidecar_config_text: crate::shapes::joined_text(&scenario.config, options.inline_headers),
    };
    let mut files = extensions::files(&r);
    files.extend(envoyfilter::files(&r));
    files.push(forks::file(&r));
    files.push(inline_headers::file(&r));
    files.sort_by(|a, b| a.0.cmp(&b.0));
    files
}

/// What every renderer reads.
struct Render<'a> {
    scenario: &'a Scenario,
    options: &'a IstioOptions,
    /// The plugin configuration, parsed (order kept).
    config: Value,
    /// As the namespace's sidecars get it: `routing_key.joined` as
    /// [`IstioOptions::inline_headers`] says.
    sidecar_config: Value,
    /// [`Render::sidecar_config`] as text: the scenario's verbatim when
    /// joined changes nothing.
    sidecar_config_text: String,
}

impl Render<'_> {
    /// A file: the header (the command, then `about`, comment lines
    /// written with their `# `), then the documents.
    fn file(&self, name: &str, about: &str, docs: &[Value]) -> (String, String) {
        let mut text = format!(
            "{RENDERED_MARK}{}{}`\n\
             # from scenario \"{}\". Do not edit by hand: change the scenario (or\n\
             # the renderer) and render again (`make deploy` for deploy/istio/).\n\
             #\n",
            escape(&self.scenario.file.display().to_string()),
            escape(&self.options.flags()),
            escape(&self.scenario.name),
        );
        text.push_str(about);
        for (i, doc) in docs.iter().enumerate() {
            if i > 0 {
                text.push_str("---\n");
            }
            text.push_str(&serde_norway::to_string(doc).unwrap_or_default());
        }
        (name.to_owned(), text)
    }

    /// Labels on every object Laneway renders.
    fn metadata(&self, name: &str, namespace: &str) -> Value {
        serde_json::json!({
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "laneway"},
        })
    }
}

/// `s` with every control character (and `\`) written `\xHH`, so it
/// stays on one comment line.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() || c == '\\' {
            for b in c.to_string().bytes() {
                out.push_str(&format!("\\x{b:02x}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Why `s` is not a Kubernetes name of DNS labels (RFC 1123: lowercase
/// letters, digits and `-`, starting and ending alphanumeric; dots between
/// labels when `max` allows a subdomain), if it is not.
pub fn dns_label_problem(s: &str, max: usize) -> Option<String> {
    if s.is_empty() || s.len() > max {
        return Some(format!("must be 1 to {max} characters"));
    }
    let labels: Vec<&str> = if max > 63 {
        s.split('.').collect()
    } else {
        vec![s]
    };
    for label in labels {
        let b = label.as_bytes();
        let ok = !b.is_empty()
            && b.len() <= 63
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
            && b[0] != b'-'
            && b[b.len() - 1] != b'-';
        if !ok {
            return Some(
                "must be lowercase letters, digits and '-', starting and ending with a letter or digit"
                    .into(),
            );
        }
    }
    None
}

/// Whether `s` is a sha256 as Istio's schema wants it: 64 lowercase hex
/// digits.
pub fn is_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Why Istio would not fetch `url`, if it would not: the scheme must be
/// `oci://`, `https://`, `http://` or `file://` (Istio also reads a URL
/// without a scheme as `oci://`; the renderer insists on one), with
/// something after it, and a `file://` path must be absolute.
fn url_problem(url: &str) -> Option<String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Some(format!(
            "{}: give a scheme: oci://, https://, http:// or file://",
            escape(url)
        ));
    };
    if !matches!(scheme, "oci" | "https" | "http" | "file") {
        return Some(format!(
            "{}: scheme {} is not oci, https, http or file",
            escape(url),
            escape(scheme)
        ));
    }
    if rest.is_empty() || rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some(format!("{}: empty, or has spaces", escape(url)));
    }
    if scheme == "file" && !rest.starts_with('/') {
        return Some(format!("{}: a file:// path must be absolute", escape(url)));
    }
    None
}

#[cfg(test)]
mod tests;
