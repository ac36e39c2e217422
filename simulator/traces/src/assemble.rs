//! Spans → traces → call trees → chain templates with counts.
//!
//! Spans arrive in input order. They are held per trace until the trace is
//! closed: at the end of the input, or when more than the window's spans
//! are open, the trace opened first is closed (exports write a trace's
//! spans close together, so this bounds memory without cutting traces).
//! A span whose trace was already closed is left out and counted.
//!
//! A closed trace becomes a call tree:
//! - parents come from parent links; a Zipkin SERVER span that shares its
//!   id with a CLIENT span is that client's call;
//! - a call is a span of another service below the caller's span, or a
//!   server/consumer span below a client/producer span; in-process child
//!   spans of one service are not calls;
//! - a client span that nothing answered is a call to the service it names
//!   (`peer.service`, `server.address`, `net.peer.name`, `db.system`, the
//!   remote endpoint): an uninstrumented database or cache;
//! - Istio gateway spans are the ingress; sidecar spans name services
//!   `name.namespace`, which are mapped to the service `name` with the host
//!   `name.namespace.svc.cluster.local`.
//!
//! Identical call trees (children in a canonical order) are one template.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use crate::model::{NONE, Proxy, Span, SpanSink, Strings, Sym, Warning};

/// Open spans at most, by default.
pub const DEFAULT_WINDOW: usize = 200_000;
/// Spans of one trace at most; the rest are left out and counted.
pub const MAX_TRACE_SPANS: usize = 100_000;
/// Calls nested deeper than this are cut and counted.
pub const MAX_DEPTH: usize = 64;
/// Distinct chains at most; traces of further chains are counted only.
pub const MAX_TEMPLATES: usize = 10_000;
/// Closed trace ids remembered, to tell late spans.
const REMEMBERED: usize = 1 << 20;

/// One call of a chain template.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallNode {
    /// The callee (index in [`Chains::services`]).
    pub service: usize,
    /// The messaging system, for a message through a queue.
    pub messaging: Option<String>,
    /// Its calls, in canonical order.
    pub then: Vec<CallNode>,
}

/// A distinct chain and how many traces took it.
#[derive(Clone, Debug)]
pub struct Template {
    /// The ingress's calls (usually one).
    pub roots: Vec<CallNode>,
    /// Traces.
    pub count: u64,
    /// The first trace that took it, in hex.
    pub example: String,
}

/// A service the traces name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    /// Its scenario name.
    pub name: String,
    /// Its host, when not its name (Istio's `name.namespace.svc.cluster.local`).
    pub host: Option<String>,
    /// Whether any span of its own was seen (false: only named by callers).
    pub instrumented: bool,
}

/// Everything the input said, besides the chains: counts for warnings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mess {
    /// Readers' warnings.
    pub read: BTreeMap<Warning, u64>,
    /// Spans seen twice (same id and kind): the second left out.
    pub duplicates: u64,
    /// Spans whose parent is not in the trace: attached to its root.
    pub orphans: u64,
    /// Traces with more than one root: the later roots attached to the first.
    pub extra_roots: u64,
    /// Traces with a child starting before its parent or ending after it.
    pub skewed_traces: u64,
    /// Spans in parent cycles: left out.
    pub cycles: u64,
    /// Spans of already closed traces: left out.
    pub late: u64,
    /// Spans past [`MAX_TRACE_SPANS`] in a trace: left out.
    pub oversized: u64,
    /// Calls deeper than [`MAX_DEPTH`]: cut.
    pub too_deep: u64,
    /// Client spans that nothing answered and that name no callee.
    pub unnamed_calls: u64,
    /// Traces of chains past [`MAX_TEMPLATES`]: counted, not templated.
    pub untemplated: u64,
    /// Traces closed early because the window was full.
    pub evicted: u64,
    /// Traces with no call at all (only gateway or in-process spans).
    pub empty: u64,
}

/// What one call carried and who served it, counted over traces: the
/// data for lost-context and misrouting findings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Observed {
    /// The callee.
    pub service: usize,
    /// The key its spans recorded ([`NONE`]: none).
    pub key: Sym,
    /// The key the trace carried at its entry ([`NONE`]: none).
    pub trace_key: Sym,
    /// The workload its spans name ([`NONE`]: none).
    pub workload: Sym,
}

/// A call whose caller had the key and whose own spans did not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Dropped {
    /// The service that did not pass the key on.
    pub at: usize,
    /// The call it made without the key.
    pub to: usize,
    /// The key.
    pub key: Sym,
}

/// The result: chains, services and what the data showed.
#[derive(Debug, Default)]
pub struct Chains {
    /// Services, in order of first sight.
    pub services: Vec<Service>,
    /// Templates by canonical text.
    pub templates: HashMap<String, Template>,
    /// Traces closed.
    pub traces: u64,
    /// Distinct spans taken (duplicates not counted).
    pub spans: u64,
    /// Warnings' counts.
    pub mess: Mess,
    /// Calls by (service, key, workload).
    pub observed: HashMap<Observed, u64>,
    /// Per trace, each first loss of the key, counted.
    pub dropped: HashMap<Dropped, u64>,
    /// Traces that recorded a key at all.
    pub keyed_traces: u64,
    by_name: HashMap<String, usize>,
    by_sym: HashMap<Sym, usize>,
}

struct Open {
    spans: Vec<Span>,
}

/// Collects spans into traces and closes them into [`Chains`].
pub struct Assembler {
    open: HashMap<u128, Open>,
    order: VecDeque<u128>,
    open_spans: usize,
    window: usize,
    closed: HashSet<u128>,
    closed_order: VecDeque<u128>,
    /// The result so far.
    pub chains: Chains,
}

impl SpanSink for Assembler {
    fn span(&mut self, trace: u128, span: Span, strings: &mut Strings) {
        if self.closed.contains(&trace) {
            self.chains.mess.late += 1;
            return;
        }
        let open = self.open.entry(trace).or_insert_with(|| {
            self.order.push_back(trace);
            Open { spans: Vec::new() }
        });
        if open.spans.len() >= MAX_TRACE_SPANS {
            self.chains.mess.oversized += 1;
            return;
        }
        open.spans.push(span);
        self.open_spans += 1;
        while self.open_spans > self.window {
            self.chains.mess.evicted += 1;
            self.close_first(strings);
        }
    }

    fn warn(&mut self, what: Warning) {
        *self.chains.mess.read.entry(what).or_default() += 1;
    }
}

impl Assembler {
    /// An assembler holding at most `window` open spans.
    pub fn new(window: usize) -> Assembler {
        Assembler {
            open: HashMap::new(),
            order: VecDeque::new(),
            open_spans: 0,
            window: window.max(1),
            closed: HashSet::new(),
            closed_order: VecDeque::new(),
            chains: Chains::default(),
        }
    }

    fn close_first(&mut self, strings: &Strings) {
        let Some(trace) = self.order.pop_front() else {
            return;
        };
        let Some(open) = self.open.remove(&trace) else {
            return;
        };
        self.open_spans -= open.spans.len();
        if self.closed_order.len() >= REMEMBERED
            && let Some(old) = self.closed_order.pop_front()
        {
            self.closed.remove(&old);
        }
        self.closed.insert(trace);
        self.closed_order.push_back(trace);
        self.chains.close(trace, open.spans, strings);
    }

    /// Closes every open trace and returns the result.
    pub fn finish(mut self, strings: &Strings) -> Chains {
        while !self.order.is_empty() {
            self.close_first(strings);
        }
        if strings.dropped > 0 {
            *self
                .chains
                .mess
                .read
                .entry(Warning::TooManyStrings)
                .or_default() += strings.dropped;
        }
        self.chains
    }
}

/// A call being built: the service, the key and workload its spans carry.
struct Node {
    service: usize,
    messaging: Option<Sym>,
    key: Sym,
    workload: Sym,
    parent: Option<usize>,
    children: Vec<usize>,
}

/// The ingress, as a node index.
const INGRESS: usize = 0;

impl Chains {
    /// The service named `sym` (as a span recorded it), mapped the way the
    /// mesh names it.
    fn service(&mut self, sym: Sym, proxy: Proxy, strings: &Strings, own: bool) -> usize {
        if let Some(&i) = self.by_sym.get(&sym) {
            if own {
                self.services[i].instrumented = true;
            }
            return i;
        }
        let raw = strings.get(sym);
        let (name, host) = scenario_name(raw, proxy);
        let i = match self.by_name.get(&name) {
            Some(&i) => i,
            None => {
                self.services.push(Service {
                    name: name.clone(),
                    host,
                    instrumented: false,
                });
                self.by_name.insert(name, self.services.len() - 1);
                self.services.len() - 1
            }
        };
        if own {
            self.services[i].instrumented = true;
        }
        self.by_sym.insert(sym, i);
        i
    }

    fn close(&mut self, trace: u128, mut spans: Vec<Span>, strings: &Strings) {
        self.traces += 1;
        // Duplicates: the same id and kind twice.
        spans.sort_by_key(|s| (s.id, s.kind, s.start));
        let before = spans.len();
        spans.dedup_by(|b, a| a.id == b.id && a.kind == b.kind && a.service == b.service);
        self.mess.duplicates += (before - spans.len()) as u64;
        self.spans += spans.len() as u64;
        let n = spans.len();
        if n == 0 {
            return;
        }

        // Parents. Span ids → positions (a shared Zipkin id has two).
        let mut by_id: HashMap<u64, (usize, Option<usize>)> = HashMap::with_capacity(n);
        for (i, s) in spans.iter().enumerate() {
            by_id
                .entry(s.id)
                .and_modify(|e| e.1 = e.1.or(Some(i)))
                .or_insert((i, None));
        }
        let mut parent: Vec<Option<usize>> = vec![None; n];
        let mut orphans = Vec::new();
        let mut orphan = vec![false; n];
        for (i, s) in spans.iter().enumerate() {
            // A shared id: the entry side's parent is the exit side.
            if let Some(&(a, Some(b))) = by_id.get(&s.id) {
                let other = if a == i { b } else { a };
                if s.kind.entry() && spans[other].kind.exit() {
                    parent[i] = Some(other);
                    continue;
                }
            }
            if s.parent == 0 {
                continue;
            }
            match by_id.get(&s.parent) {
                Some(&(a, b)) => {
                    // Of two spans with the parent's id, the entry side.
                    let p = match b {
                        Some(b) if spans[b].kind.entry() => b,
                        _ => a,
                    };
                    if p != i {
                        parent[i] = Some(p);
                    }
                }
                None => {
                    orphans.push(i);
                    orphan[i] = true;
                }
            }
        }
        let mut roots: Vec<usize> = (0..n)
            .filter(|&i| parent[i].is_none() && !orphan[i])
            .collect();
        roots.sort_by_key(|&i| (spans[i].start, i));
        let root = match roots.first() {
            Some(&r) => r,
            None => {
                // Every span has a parent or is an orphan: the earliest
                // orphan, else the earliest span, is the root.
                let pick = if orphans.is_empty() {
                    (0..n).min_by_key(|&i| (spans[i].start, i))
                } else {
                    orphans.iter().copied().min_by_key(|&i| (spans[i].start, i))
                };
                let r = pick.unwrap_or(0);
                orphans.retain(|&o| o != r);
                parent[r] = None;
                r
            }
        };
        if roots.len() > 1 {
            self.mess.extra_roots += 1;
            for &r in &roots[1..] {
                parent[r] = Some(root);
            }
        }
        self.mess.orphans += orphans.len() as u64;
        for &o in &orphans {
            parent[o] = Some(root);
        }

        // Children, in start order.
        let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (i, p) in parent.iter().enumerate() {
            if let Some(p) = *p {
                children[p].push(i);
            }
        }
        let mut skewed = false;
        for (p, kids) in children.iter_mut().enumerate() {
            kids.sort_by_key(|&c| (spans[c].start, c));
            for &c in kids.iter() {
                let (ps, cs) = (&spans[p], &spans[c]);
                // A message's consumer may well run after its producer.
                if ps.kind.messaging() || cs.kind.messaging() {
                    continue;
                }
                if cs.start < ps.start || (cs.end > ps.end && ps.end > 0) {
                    skewed = true;
                }
            }
        }
        if skewed {
            self.mess.skewed_traces += 1;
        }

        // Walk the span tree from the root, building calls.
        let mut nodes = vec![Node {
            service: usize::MAX,
            messaging: None,
            key: NONE,
            workload: NONE,
            parent: None,
            children: Vec::new(),
        }];
        let mut visited = vec![false; n];
        // (span, its call node, depth of that node).
        let mut stack = vec![(root, INGRESS, 0usize, true)];
        while let Some((i, at, depth, top)) = stack.pop() {
            if visited[i] {
                continue;
            }
            visited[i] = true;
            let s = spans[i];
            let gateway = s.proxy == Proxy::Gateway;
            let mut node = at;
            if !gateway {
                let service = self.service(s.service, s.proxy, strings, true);
                let p = parent[i].map(|p| spans[p]);
                let new_call = top
                    || at == INGRESS
                    || nodes[at].service != service
                    || (s.kind.entry() && p.is_some_and(|p| p.kind.exit()));
                if new_call {
                    if depth >= MAX_DEPTH {
                        self.mess.too_deep += 1;
                        continue;
                    }
                    let messaging = (s.kind.messaging() || p.is_some_and(|p| p.kind.messaging()))
                        .then(|| {
                            if s.messaging != NONE {
                                s.messaging
                            } else {
                                p.map_or(NONE, |p| p.messaging)
                            }
                        });
                    nodes.push(Node {
                        service,
                        messaging,
                        key: NONE,
                        workload: NONE,
                        parent: Some(at),
                        children: Vec::new(),
                    });
                    node = nodes.len() - 1;
                    nodes[at].children.push(node);
                }
                let d = &mut nodes[node];
                if d.key == NONE {
                    d.key = s.key;
                }
                if d.workload == NONE && !s.kind.exit() {
                    d.workload = s.workload;
                }
            }
            let depth = if node == at { depth } else { depth + 1 };
            // A client span nothing answered: a call to the service it names.
            if s.kind.exit() {
                let answered = children[i]
                    .iter()
                    .any(|&c| spans[c].kind.entry() || spans[c].service != s.service);
                if !answered {
                    if s.peer == NONE {
                        self.mess.unnamed_calls += 1;
                    } else if depth < MAX_DEPTH {
                        let service = self.service(s.peer, Proxy::None, strings, false);
                        nodes.push(Node {
                            service,
                            messaging: s.kind.messaging().then_some(s.messaging),
                            key: s.key,
                            workload: NONE,
                            parent: Some(node),
                            children: Vec::new(),
                        });
                        let id = nodes.len() - 1;
                        nodes[node].children.push(id);
                    } else {
                        self.mess.too_deep += 1;
                    }
                }
            }
            for &c in children[i].iter().rev() {
                stack.push((c, node, depth, false));
            }
        }
        self.mess.cycles += visited.iter().filter(|v| !**v).count() as u64;
        if nodes[INGRESS].children.is_empty() {
            self.mess.empty += 1;
            return;
        }
        self.observe(&nodes);
        self.template(trace, &nodes, strings);
    }

    /// Counts what each call carried, and each first loss of the key: a
    /// call without the key whose caller had it. Below such a call nobody
    /// has the key, so only the first loss on each path counts, and each
    /// loss counts once per trace.
    fn observe(&mut self, nodes: &[Node]) {
        let trace_key = nodes[1..].iter().map(|n| n.key).find(|&k| k != NONE);
        let mut seen: HashSet<Dropped> = HashSet::new();
        for n in &nodes[1..] {
            *self
                .observed
                .entry(Observed {
                    service: n.service,
                    key: n.key,
                    trace_key: trace_key.unwrap_or(NONE),
                    workload: n.workload,
                })
                .or_default() += 1;
            if let Some(p) = n.parent
                && p != INGRESS
                && n.key == NONE
                && nodes[p].key != NONE
            {
                let d = Dropped {
                    at: nodes[p].service,
                    to: n.service,
                    key: nodes[p].key,
                };
                if seen.insert(d) {
                    *self.dropped.entry(d).or_default() += 1;
                }
            }
        }
        if trace_key.is_some() {
            self.keyed_traces += 1;
        }
    }

    fn template(&mut self, trace: u128, nodes: &[Node], strings: &Strings) {
        let mut roots: Vec<(String, CallNode)> = nodes[INGRESS]
            .children
            .iter()
            .map(|&c| self.call_node(nodes, c, strings))
            .collect();
        roots.sort_by(|a, b| a.0.cmp(&b.0));
        let text: String = roots.iter().map(|(t, _)| t.as_str()).collect();
        if let Some(t) = self.templates.get_mut(&text) {
            t.count += 1;
            return;
        }
        if self.templates.len() >= MAX_TEMPLATES {
            self.mess.untemplated += 1;
            return;
        }
        self.templates.insert(
            text,
            Template {
                roots: roots.into_iter().map(|(_, n)| n).collect(),
                count: 1,
                example: format!("{trace:032x}"),
            },
        );
    }

    /// The call tree below node `at`, with its canonical text: the
    /// service's name, its messaging mark and its calls' texts in sorted
    /// order, so equal trees have equal texts whatever the input's order.
    fn call_node(&self, nodes: &[Node], at: usize, strings: &Strings) -> (String, CallNode) {
        // Iterative post-order, so a deep tree does not deepen the stack.
        let mut built: HashMap<usize, (String, CallNode)> = HashMap::new();
        let mut stack = vec![(at, false)];
        while let Some((i, done)) = stack.pop() {
            if !done {
                stack.push((i, true));
                for &c in &nodes[i].children {
                    stack.push((c, false));
                }
                continue;
            }
            let mut then: Vec<(String, CallNode)> = nodes[i]
                .children
                .iter()
                .filter_map(|c| built.remove(c))
                .collect();
            then.sort_by(|a, b| a.0.cmp(&b.0));
            let messaging = nodes[i].messaging.map(|m| match strings.get(m) {
                "" => "queue".to_owned(),
                m => m.to_owned(),
            });
            let mut text = self.services[nodes[i].service].name.clone();
            if let Some(m) = &messaging {
                text.push('~');
                text.push_str(m);
            }
            if !then.is_empty() {
                text.push('(');
                for (t, _) in &then {
                    text.push_str(t);
                }
                text.push(')');
            }
            text.push(';');
            let node = CallNode {
                service: nodes[i].service,
                messaging,
                then: then.into_iter().map(|(_, n)| n).collect(),
            };
            built.insert(i, (text, node));
        }
        built.remove(&at).unwrap_or_default()
    }

    /// A template for people: `frontend → [customer → [mysql], route ×3]`
    /// (a message: `dispatcher (kafka)`).
    pub fn show(&self, roots: &[CallNode]) -> String {
        let mut out = String::new();
        self.show_list(roots, &mut out);
        out
    }

    fn show_list(&self, list: &[CallNode], out: &mut String) {
        let mut i = 0;
        while i < list.len() {
            if i > 0 {
                out.push_str(", ");
            }
            let n = &list[i];
            let same = list[i..].iter().take_while(|m| *m == n).count();
            out.push_str(&self.services[n.service].name);
            if let Some(m) = &n.messaging {
                out.push_str(&format!(" ({m})"));
            }
            if !n.then.is_empty() {
                out.push_str(" → [");
                self.show_list(&n.then, out);
                out.push(']');
            }
            if same > 1 {
                out.push_str(&format!(" ×{same}"));
            }
            i += same;
        }
    }

    /// Templates, most frequent first (ties by text).
    pub fn ranked(&self) -> Vec<(&String, &Template)> {
        let mut all: Vec<_> = self.templates.iter().collect();
        all.sort_by(|a, b| b.1.count.cmp(&a.1.count).then(a.0.cmp(b.0)));
        all
    }
}

/// A scenario service name (and host) for a span's service name: Istio
/// proxies' `name.namespace` becomes `name` at
/// `name.namespace.svc.cluster.local`; characters a scenario name cannot
/// hold become `-`.
pub fn scenario_name(raw: &str, proxy: Proxy) -> (String, Option<String>) {
    let clean: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect::<String>()
        .trim_matches(|c| c == '-' || c == '.')
        .to_owned();
    let clean = if clean.is_empty() {
        "unnamed".to_owned()
    } else {
        clean
    };
    if proxy != Proxy::None
        && let Some((name, namespace)) = clean.split_once('.')
        && !namespace.contains('.')
        && !name.is_empty()
        && !namespace.is_empty()
    {
        return (
            name.to_owned(),
            Some(format!("{name}.{namespace}.svc.cluster.local")),
        );
    }
    (clean, None)
}
