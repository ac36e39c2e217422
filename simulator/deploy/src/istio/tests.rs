use super::*;

#[test]
fn names_are_dns_labels() {
    assert_eq!(dns_label_problem("hotrod", 63), None);
    assert_eq!(dns_label_problem("a.b-c", 253), None);
    for bad in ["", "Hotrod", "-a", "a-", "a.b", "a_b"] {
        assert!(dns_label_problem(bad, 63).is_some(), "{bad:?}");
    }
    assert!(dns_label_problem("a..b", 253).is_some());
    assert!(dns_label_problem(&"a".repeat(64), 63).is_some());
}

#[test]
fn urls_need_one_of_istios_schemes() {
    for ok in [
        "oci://registry.example.com/laneway:0.1.0",
        "oci://r/laneway@sha256:00",
        "https://example.com/laneway_filter.wasm",
        "http://10.0.0.1:8080/m.wasm",
        "file:///var/local/lib/wasm-filters/laneway_filter.wasm",
    ] {
        assert_eq!(url_problem(ok), None, "{ok}");
    }
    for bad in [
        "registry/laneway:1",
        "ftp://example.com/m.wasm",
        "oci://",
        "file://relative/m.wasm",
        "https://example.com/a b",
    ] {
        assert!(url_problem(bad).is_some(), "{bad}");
    }
}

#[test]
fn sha256_is_64_lowercase_hex() {
    assert!(is_sha256(&"0f".repeat(32)));
    assert!(!is_sha256(&"0F".repeat(32)));
    assert!(!is_sha256(&"0f".repeat(31)));
}

#[test]
fn escape_keeps_scenario_text_on_one_comment_line() {
    assert_eq!(escape("hot\nrod\\"), "hot\\x0arod\\x5c");
    assert_eq!(escape("plain-name"), "plain-name");
}

#[test]
fn the_default_url_is_this_version_in_the_registry() {
    let o = IstioOptions::default();
    assert_eq!(
        o.url(),
        format!(
            "oci://registry.example.com/laneway:{}",
            env!("CARGO_PKG_VERSION")
        )
    );
    assert_eq!(o.module_path(), DEFAULT_MODULE_FILE);
    let file = IstioOptions {
        url: Some("file:///opt/laneway.wasm".into()),
        ..IstioOptions::default()
    };
    assert_eq!(file.module_path(), "/opt/laneway.wasm");
}
