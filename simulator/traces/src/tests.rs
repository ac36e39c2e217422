//! Unit tests: the tokenizer against serde_json, the readers' variants,
//! the call-tree rules and the findings.

use std::io::Read;

use crate::assemble::Assembler;
use crate::lex::{Lexer, Tok};
use crate::read::{Format, Names, parse_id, read};
use crate::{Options, findings, import};

/// Every token of `text`, as strings, reading `chunk` bytes at a time.
fn tokens(text: &str, chunk: usize) -> Result<Vec<String>, String> {
    struct Slow<'a>(&'a [u8], usize);
    impl Read for Slow<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.0.len().min(self.1).min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    let mut lx = Lexer::new(Slow(text.as_bytes(), chunk));
    let mut out = Vec::new();
    loop {
        match lx.token() {
            Ok(None) => return Ok(out),
            Ok(Some(t)) => out.push(match t {
                Tok::Key(k) => format!("k:{k}"),
                Tok::Str(s) => format!("s:{s}"),
                t => format!("{t:?}"),
            }),
            Err(e) => return Err(format!("{}: {}", e.offset, e.reason)),
        }
    }
}

#[test]
fn the_tokenizer_reads_what_serde_json_reads_whatever_the_chunking() {
    let doc = r#"{"a": [1, -2.5e3, "x\"y\u00e9", true, false, null, {}], "b\n": {"c": []}}"#;
    let want = tokens(doc, 1 << 20).unwrap();
    assert_eq!(
        want,
        [
            "Object",
            "k:a",
            "Array",
            "Num(\"1\")",
            "Num(\"-2.5e3\")",
            "s:x\"yé",
            "Bool(true)",
            "Bool(false)",
            "Null",
            "Object",
            "End",
            "End",
            "k:b\n",
            "Object",
            "k:c",
            "Array",
            "End",
            "End",
            "End"
        ]
    );
    for chunk in [1, 2, 3, 7] {
        assert_eq!(tokens(doc, chunk).unwrap(), want, "chunk {chunk}");
    }
    // Documents one after another (a JSON Lines file).
    assert_eq!(
        tokens("{}\n[]\n", 1).unwrap(),
        ["Object", "End", "Array", "End"]
    );
}

#[test]
fn the_tokenizer_refuses_broken_json_with_an_offset() {
    for (doc, want) in [
        ("{\"a\": 1", "ends inside an object"),
        ("[1 2]", "expected ',' or ']'"),
        ("{\"a\" 1}", "expected ':'"),
        ("{1: 2}", "expected a key"),
        ("\"abc", "inside a string"),
        ("nul", "ends inside a value"),
        ("[tru]", "expected true, false or null"),
        ("\u{0}", "byte 0x00"),
        ("{\"a\":\"\t\"}", "control character"),
    ] {
        let e = tokens(doc, 2).unwrap_err();
        assert!(e.contains(want), "{doc:?}: {e}");
    }
    let deep = "[".repeat(200);
    assert!(
        tokens(&deep, 64)
            .unwrap_err()
            .contains("nesting deeper than 128")
    );
}

#[test]
fn skipping_does_not_build_or_bound_what_it_skips() {
    // A 3 MiB string that nobody reads: skipped, not refused.
    let big = "x".repeat(3 << 20);
    let doc = format!(r#"{{"skip": ["{big}", {{"k": "{big}"}}], "keep": "v"}}"#);
    let mut lx = Lexer::new(doc.as_bytes());
    assert_eq!(lx.token().unwrap(), Some(Tok::Object));
    assert_eq!(lx.token().unwrap(), Some(Tok::Key("skip")));
    lx.skip().unwrap();
    assert_eq!(lx.token().unwrap(), Some(Tok::Key("keep")));
    assert_eq!(lx.token().unwrap(), Some(Tok::Str("v")));
    // Read, the same string is over the limit.
    let doc = format!(r#"["{big}"]"#);
    let mut lx = Lexer::new(doc.as_bytes());
    lx.token().unwrap();
    assert!(lx.token().unwrap_err().reason.contains("longer than 1 MiB"));
}

#[test]
fn ids_are_hex_or_base64() {
    assert_eq!(parse_id("00000000000000000000000000000001", 16), Some(1));
    assert_eq!(parse_id("AAAAAAAAAAAAAAAAAAAAAQ==", 16), Some(1));
    assert_eq!(parse_id("AAAAAAAAAAE=", 8), Some(1));
    assert_eq!(parse_id("0000000000000abc", 8), Some(0xabc));
    // A 64-bit trace id, as Zipkin and Jaeger allow.
    assert_eq!(parse_id("0000000000000abc", 16), Some(0xabc));
    assert_eq!(parse_id("", 8), Some(0));
    assert_eq!(parse_id("xyz", 8), None);
    assert_eq!(parse_id("zz00000000000000", 8), None);
}

/// The chains of a document, shown.
fn chains_of(doc: &str) -> Vec<(String, u64)> {
    let mut strings = crate::Strings::default();
    let mut asm = Assembler::new(1000);
    read(
        doc.as_bytes(),
        Format::Auto,
        &Names::default(),
        &mut strings,
        &mut asm,
    )
    .unwrap();
    let chains = asm.finish(&strings);
    chains
        .ranked()
        .iter()
        .map(|(_, t)| (chains.show(&t.roots), t.count))
        .collect()
}

/// An OTLP span: (service, id, parent, kind, extra attributes).
fn otlp(spans: &[(&str, u64, u64, u8, &str)]) -> String {
    let mut rs = Vec::new();
    for (i, (service, id, parent, kind, attrs)) in spans.iter().enumerate() {
        let parent = if *parent == 0 {
            String::new()
        } else {
            format!("{parent:016x}")
        };
        rs.push(format!(
            r#"{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"{service}"}}}}]}},
             "scopeSpans":[{{"spans":[{{"traceId":"000000000000000000000000000000aa","spanId":"{id:016x}",
             "parentSpanId":"{parent}","kind":{kind},"startTimeUnixNano":"{}","endTimeUnixNano":"{}",
             "attributes":[{attrs}]}}]}}]}}"#,
            1000 + i,
            100_000 - i
        ));
    }
    format!(r#"{{"resourceSpans":[{}]}}"#, rs.join(","))
}

fn attr(k: &str, v: &str) -> String {
    format!(r#"{{"key":"{k}","value":{{"stringValue":"{v}"}}}}"#)
}

#[test]
fn calls_come_from_client_server_pairs_and_in_process_spans_are_not_calls() {
    let db = attr("db.system", "mysql");
    let doc = otlp(&[
        ("frontend", 1, 0, 2, ""),
        ("frontend", 2, 1, 1, ""), // in-process
        ("frontend", 3, 2, 3, ""), // client → customer
        ("customer", 4, 3, 2, ""),
        ("customer", 5, 4, 1, ""),  // in-process
        ("customer", 6, 5, 3, &db), // client → uninstrumented mysql
        ("frontend", 7, 1, 3, ""),
        ("route", 8, 7, 2, ""),
        ("frontend", 9, 1, 3, ""),
        ("route", 10, 9, 2, ""),
        ("frontend", 11, 1, 3, ""), // a client nothing answered, naming nothing
    ]);
    assert_eq!(
        chains_of(&doc),
        [("frontend → [customer → [mysql], route ×2]".to_owned(), 1)]
    );
}

#[test]
fn a_self_call_over_the_network_is_a_call_and_a_sidecar_span_is_not() {
    // a → a through a client span: two calls.
    let doc = otlp(&[("a", 1, 0, 2, ""), ("a", 2, 1, 3, ""), ("a", 3, 2, 2, "")]);
    assert_eq!(chains_of(&doc), [("a → [a]".to_owned(), 1)]);
    // A server span under a server span of the same service (a sidecar's
    // and the application's): one call.
    let doc = otlp(&[("a", 1, 0, 2, ""), ("a", 2, 1, 2, "")]);
    assert_eq!(chains_of(&doc), [("a".to_owned(), 1)]);
}

#[test]
fn istio_names_map_to_service_hosts_and_the_gateway_is_the_ingress() {
    let gw = attr(
        "node_id",
        "router~10.0.0.1~gw~istio-system.svc.cluster.local",
    );
    let sc = attr(
        "node_id",
        "sidecar~10.0.0.2~productpage~bookinfo.svc.cluster.local",
    );
    let doc = otlp(&[
        ("istio-ingressgateway.istio-system", 1, 0, 3, &gw),
        ("productpage.bookinfo", 2, 1, 2, &sc),
        ("productpage.bookinfo", 3, 2, 3, &sc),
        ("reviews.bookinfo", 4, 3, 2, &sc),
    ]);
    let mut strings = crate::Strings::default();
    let mut asm = Assembler::new(1000);
    read(
        doc.as_bytes(),
        Format::Auto,
        &Names::default(),
        &mut strings,
        &mut asm,
    )
    .unwrap();
    let chains = asm.finish(&strings);
    let (_, t) = chains.ranked()[0];
    assert_eq!(chains.show(&t.roots), "productpage → [reviews]");
    let reviews = chains
        .services
        .iter()
        .find(|s| s.name == "reviews")
        .unwrap();
    assert_eq!(
        reviews.host.as_deref(),
        Some("reviews.bookinfo.svc.cluster.local")
    );
    assert!(!chains.services.iter().any(|s| s.name.contains("gateway")));
}

#[test]
fn a_zipkin_shared_span_is_one_call() {
    let doc = r#"[
      {"traceId":"aa","id":"0000000000000001","kind":"SERVER","timestamp":1,"duration":100,"localEndpoint":{"serviceName":"frontend"}},
      {"traceId":"aa","id":"0000000000000002","parentId":"0000000000000001","kind":"CLIENT","timestamp":2,"duration":50,"localEndpoint":{"serviceName":"frontend"}},
      {"traceId":"aa","id":"0000000000000002","parentId":"0000000000000001","kind":"SERVER","shared":true,"timestamp":3,"duration":40,"localEndpoint":{"serviceName":"driver"}},
      {"traceId":"aa","id":"0000000000000003","parentId":"0000000000000002","kind":"CLIENT","timestamp":4,"duration":10,"localEndpoint":{"serviceName":"driver"},"remoteEndpoint":{"serviceName":"redis"}}
    ]"#;
    // Zipkin's traceId may be 64-bit; "aa" is neither 16 nor 32 digits.
    let doc = doc.replace("\"aa\"", "\"00000000000000aa\"");
    assert_eq!(
        chains_of(&doc),
        [("frontend → [driver → [redis]]".to_owned(), 1)]
    );
}

#[test]
fn identical_traces_are_one_template_with_a_count_whatever_their_order() {
    let one = |t: u8, swap: bool| {
        let (b, c) = if swap { ("c", "b") } else { ("b", "c") };
        otlp(&[
            ("a", 1, 0, 2, ""),
            ("a", 2, 1, 3, ""),
            (b, 3, 2, 2, ""),
            ("a", 4, 1, 3, ""),
            (c, 5, 4, 2, ""),
        ])
        .replace("000000000000000000000000000000aa", &format!("{t:032x}"))
    };
    let doc = format!("{}\n{}\n{}", one(1, false), one(2, true), one(3, false));
    assert_eq!(chains_of(&doc), [("a → [b, c]".to_owned(), 3)]);
}

#[test]
fn mess_is_counted_not_hidden() {
    // An orphan, a duplicate and a cycle.
    let doc = otlp(&[
        ("a", 1, 0, 2, ""),
        ("a", 2, 1, 3, ""),
        ("b", 3, 2, 2, ""),
        ("b", 3, 2, 2, ""),
        ("c", 4, 99, 2, ""),
        ("d", 5, 6, 2, ""),
        ("d", 6, 5, 2, ""),
    ]);
    let mut strings = crate::Strings::default();
    let mut asm = Assembler::new(1000);
    read(
        doc.as_bytes(),
        Format::Auto,
        &Names::default(),
        &mut strings,
        &mut asm,
    )
    .unwrap();
    let chains = asm.finish(&strings);
    assert_eq!(chains.mess.duplicates, 1);
    assert_eq!(chains.mess.orphans, 1);
    assert_eq!(chains.mess.cycles, 2);
    let (_, t) = chains.ranked()[0];
    assert_eq!(chains.show(&t.roots), "a → [b, c]");
}

#[test]
fn a_full_window_closes_the_oldest_trace_and_late_spans_are_counted() {
    let trace = |t: u8, spans: &[(&str, u64, u64, u8, &str)]| {
        otlp(spans).replace("000000000000000000000000000000aa", &format!("{t:032x}"))
    };
    // Trace 1's second half comes after trace 2: with a window of 2 spans,
    // trace 1 is closed when trace 2 arrives.
    let doc = [
        trace(1, &[("a", 1, 0, 2, ""), ("a", 2, 1, 3, "")]),
        trace(2, &[("x", 1, 0, 2, "")]),
        trace(1, &[("b", 3, 2, 2, "")]),
    ]
    .join("\n");
    let mut strings = crate::Strings::default();
    let mut asm = Assembler::new(2);
    read(
        doc.as_bytes(),
        Format::Auto,
        &Names::default(),
        &mut strings,
        &mut asm,
    )
    .unwrap();
    let chains = asm.finish(&strings);
    assert_eq!(chains.mess.evicted, 1);
    assert_eq!(chains.mess.late, 1);
    // With room, the same input is whole.
    assert_eq!(
        chains_of(&doc),
        [("a → [b]".to_owned(), 1), ("x".to_owned(), 1)]
    );
}

#[test]
fn lost_keys_and_misrouted_calls_come_from_the_data() {
    let k = attr("sd-routing-key", "k1");
    let bk = attr("baggage.sd-routing-key", "k1");
    let w = |d: &str| attr("k8s.deployment.name", d);
    let spans = |t: u8, v: &[(&str, u64, u64, u8, String)]| {
        let v: Vec<(&str, u64, u64, u8, &str)> = v
            .iter()
            .map(|(s, i, p, kd, a)| (*s, *i, *p, *kd, a.as_str()))
            .collect();
        otlp(&v).replace("000000000000000000000000000000aa", &format!("{t:032x}"))
    };
    let doc = [
        // Tagged: customer drops the key on its call to location.
        spans(
            1,
            &[
                ("frontend", 1, 0, 2, k.clone()),
                ("frontend", 2, 1, 3, k.clone()),
                ("customer", 3, 2, 2, format!("{bk},{}", w("customer"))),
                ("customer", 4, 3, 3, String::new()),
                ("location", 5, 4, 2, w("location")),
            ],
        ),
        // Tagged, carried: location's fork serves it.
        spans(
            2,
            &[
                ("frontend", 1, 0, 2, k.clone()),
                ("frontend", 2, 1, 3, k.clone()),
                ("customer", 3, 2, 2, format!("{k},{}", w("customer"))),
                ("customer", 4, 3, 3, k.clone()),
                ("location", 5, 4, 2, format!("{k},{}", w("location-k1"))),
            ],
        ),
        // Tagged: another sandbox's fork serves customer.
        spans(
            3,
            &[
                ("frontend", 1, 0, 2, k.clone()),
                ("frontend", 2, 1, 3, k.clone()),
                ("customer", 3, 2, 2, format!("{k},{}", w("customer-zz9"))),
            ],
        ),
        // Untagged: baseline everywhere.
        spans(
            4,
            &[
                ("frontend", 1, 0, 2, String::new()),
                ("frontend", 2, 1, 3, String::new()),
                ("customer", 3, 2, 2, w("customer")),
            ],
        ),
    ]
    .join("\n");
    let dir = std::env::temp_dir().join(format!("laneway-traces-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("keys.json");
    std::fs::write(&file, doc).unwrap();
    let imp = import(&[file.display().to_string()], &Options::default()).unwrap();
    let f = findings(&imp.chains, &imp.strings, &[]);
    assert_eq!(f.keyed_traces, 3);
    assert_eq!(f.lost.len(), 1);
    assert_eq!(
        (
            f.lost[0].at.as_str(),
            f.lost[0].to.as_str(),
            f.lost[0].traces
        ),
        ("customer", "location", 1)
    );
    let mut kinds: Vec<(&str, &str, &str, bool, u64)> = f
        .misrouted
        .iter()
        .map(|m| {
            (
                m.kind,
                m.service.as_str(),
                m.workload.as_str(),
                m.lost,
                m.calls,
            )
        })
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            ("baseline", "location", "location", true, 1),
            ("other-fork", "customer", "customer-zz9", false, 1),
        ]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1000))]

    /// Arbitrary JSON-ish bytes at any chunking: never a panic, and
    /// whatever serde_json reads, the tokenizer reads too.
    #[test]
    fn the_tokenizer_never_panics_and_reads_valid_json(
        text in "[\\[\\]{}\":,a-c0-9 .e\\-\\\\u\n]{0,60}",
        chunk in 1usize..8,
    ) {
        let ours = tokens(&text, chunk);
        let theirs = serde_json::Deserializer::from_str(&text)
            .into_iter::<serde_json::Value>()
            .collect::<Result<Vec<_>, _>>();
        if theirs.is_ok() {
            proptest::prop_assert!(ours.is_ok(), "{text:?}: {ours:?}");
        }
    }
}
