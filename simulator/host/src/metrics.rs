//! Counters, gauges and histograms a guest defines with
//! `proxy_define_metric`, with Envoy's semantics (`Context::defineMetric`
//! and friends in Envoy's `source/extensions/common/wasm/context.cc`).
//!
//! - Ids carry the kind in their low two bits, as Envoy's do (counters
//!   `4, 8, ..`, gauges `5, 9, ..`, histograms `6, 10, ..`). Defining the
//!   same name and kind again returns the same id (Envoy hands out a new id
//!   for the same underlying stat; a guest cannot tell the difference).
//! - `increment`: counters only by a positive delta, gauges up or down,
//!   histograms never. `record`: adds to a counter, sets a gauge, records a
//!   histogram sample. `get`: counters and gauges.
//! - Names are reported as defined: Envoy exposes them under its
//!   `wasmcustom.` stats namespace.
//!
//! Metrics belong to one VM (Envoy's stats are process-wide; a caller that
//! runs one VM per thread sums them).
//!
//! Invariant: no operation panics; arithmetic wraps like Envoy's `uint64_t`.

use std::collections::HashMap;

use proxy_wasm_abi::{MetricKind, Status};

/// A histogram's samples, summarized.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Histogram {
    pub count: u64,
    pub sum: u64,
    pub min: u64,
    pub max: u64,
}

/// One metric as [`Vm::metrics`](super::Vm::metrics) reports it. `value` is
/// the counter or gauge value, or a histogram's sample count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Metric<'a> {
    pub name: &'a str,
    pub kind: MetricKind,
    pub value: u64,
    pub histogram: Option<Histogram>,
}

struct Slot {
    name: String,
    kind: MetricKind,
    value: u64,
    histogram: Histogram,
}

#[derive(Default)]
pub(crate) struct Metrics {
    slots: Vec<Slot>,
    /// `(kind, name)` → index in `slots`.
    by_name: HashMap<(u32, String), usize>,
}

impl Metrics {
    /// The id of metric `name` of `kind`, defined now if new; `None` when
    /// the VM already has `cap` metrics.
    pub fn define(&mut self, kind: MetricKind, name: &[u8], cap: usize) -> Option<u32> {
        let key = (kind as u32, String::from_utf8_lossy(name).into_owned());
        let index = match self.by_name.get(&key) {
            Some(&i) => i,
            None => {
                if self.slots.len() >= cap {
                    return None;
                }
                self.slots.push(Slot {
                    name: key.1.clone(),
                    kind,
                    value: 0,
                    histogram: Histogram::default(),
                });
                self.by_name.insert(key, self.slots.len() - 1);
                self.slots.len() - 1
            }
        };
        // Ids stay below 2^32: `cap` keeps the count far below a billion.
        Some((((index as u32).wrapping_add(1)) << 2) | kind as u32)
    }

    fn slot(&mut self, id: u32) -> Result<&mut Slot, Status> {
        let kind = MetricKind::from_u32(id & 3).ok_or(Status::BadArgument)?;
        let index = (id >> 2).checked_sub(1).ok_or(Status::NotFound)? as usize;
        match self.slots.get_mut(index) {
            Some(slot) if slot.kind == kind => Ok(slot),
            _ => Err(Status::NotFound),
        }
    }

    pub fn increment(&mut self, id: u32, delta: i64) -> Status {
        match self.slot(id) {
            Ok(slot) => match slot.kind {
                MetricKind::Counter if delta > 0 => {
                    slot.value = slot.value.wrapping_add(delta as u64);
                    Status::Ok
                }
                MetricKind::Gauge => {
                    slot.value = slot.value.wrapping_add_signed(delta);
                    Status::Ok
                }
                _ => Status::BadArgument,
            },
            Err(status) => status,
        }
    }

    pub fn record(&mut self, id: u32, value: u64) -> Status {
        match self.slot(id) {
            Ok(slot) => {
                match slot.kind {
                    MetricKind::Counter => slot.value = slot.value.wrapping_add(value),
                    MetricKind::Gauge => slot.value = value,
                    MetricKind::Histogram => {
                        let h = &mut slot.histogram;
                        h.min = if h.count == 0 {
                            value
                        } else {
                            h.min.min(value)
                        };
                        h.max = h.max.max(value);
                        h.count += 1;
                        h.sum = h.sum.wrapping_add(value);
                        slot.value = h.count;
                    }
                }
                Status::Ok
            }
            // Envoy answers NotFound for any id it cannot resolve here.
            Err(_) => Status::NotFound,
        }
    }

    pub fn get(&mut self, id: u32) -> Result<u64, Status> {
        let slot = self.slot(id)?;
        match slot.kind {
            MetricKind::Histogram => Err(Status::BadArgument),
            _ => Ok(slot.value),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = Metric<'_>> {
        self.slots.iter().map(|s| Metric {
            name: &s.name,
            kind: s.kind,
            value: s.value,
            histogram: (s.kind == MetricKind::Histogram).then_some(s.histogram),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_envoys_rules() {
        let mut m = Metrics::default();
        let cap = 3;
        let c = m.define(MetricKind::Counter, b"c", cap).unwrap();
        let g = m.define(MetricKind::Gauge, b"g", cap).unwrap();
        let h = m.define(MetricKind::Histogram, b"h", cap).unwrap();
        assert_eq!((c & 3, g & 3, h & 3), (0, 1, 2));
        assert_eq!(
            m.define(MetricKind::Counter, b"c", cap),
            Some(c),
            "same name, same id"
        );
        assert_eq!(m.define(MetricKind::Counter, b"d", cap), None, "the cap");
        assert_eq!(m.increment(c, 2), Status::Ok);
        assert_eq!(m.increment(c, 0), Status::BadArgument);
        assert_eq!(m.increment(c, -1), Status::BadArgument);
        assert_eq!(m.record(c, 3), Status::Ok);
        assert_eq!(m.get(c), Ok(5));
        assert_eq!(m.increment(g, 5), Status::Ok);
        assert_eq!(m.increment(g, -2), Status::Ok);
        assert_eq!(m.get(g), Ok(3));
        assert_eq!(m.record(g, 9), Status::Ok);
        assert_eq!(m.get(g), Ok(9));
        assert_eq!(m.increment(h, 1), Status::BadArgument);
        assert_eq!(m.record(h, 7), Status::Ok);
        assert_eq!(m.record(h, 3), Status::Ok);
        assert_eq!(m.get(h), Err(Status::BadArgument));
        let hist = m.iter().find(|x| x.name == "h").unwrap().histogram.unwrap();
        assert_eq!((hist.count, hist.sum, hist.min, hist.max), (2, 10, 3, 7));
        assert_eq!(m.get(c + 4 * 100), Err(Status::NotFound));
        assert_eq!(m.increment(3, 1), Status::BadArgument);
        assert_eq!(m.record(0, 1), Status::NotFound);
    }
}
