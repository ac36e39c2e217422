//! Byte maps the host hands to a guest: [`HeaderMap`] (an HTTP header map
//! with Envoy's rules) and [`Properties`] (exact-key attributes).
//!
//! Both keep every name and value in one byte buffer plus a small index, so
//! a map that is cleared and refilled hop after hop stops allocating once
//! its buffers have grown; iteration yields borrowed `(&[u8], &[u8])` pairs.
//!
//! [`HeaderMap`] follows Envoy's `HeaderMapImpl`:
//! - names are ASCII-lowercased on insert and matched case-insensitively;
//! - entries keep insertion order, except that pseudo-headers (names that
//!   start with `:`) stay before every regular header, as Envoy's
//!   `HeaderList` keeps them;
//! - duplicates are kept; [`HeaderMap::get`] returns the *first* value,
//!   which is all a proxy-wasm filter gets from Envoy for a repeated header;
//! - [`HeaderMap::replace`] is Envoy's `setCopy`: remove every entry with the
//!   name, then add one.
//!
//! Not modelled: Envoy coalesces a repeated *inline* header (`:authority`,
//! `x-forwarded-for`, ...) into one comma-joined value; here duplicates stay
//! separate entries.
//!
//! Invariant: no operation panics, whatever the bytes.

use std::fmt;

/// Where one entry's name and value live in the shared byte buffer: the
/// name at `at..at + name`, the value right after it.
#[derive(Clone, Copy, Debug)]
struct Entry {
    at: usize,
    name: usize,
    value: usize,
}

/// Names and values in one buffer, in entry order. Removing leaves dead
/// bytes behind; they are reclaimed when they outweigh the live ones.
#[derive(Clone, Default)]
struct Flat {
    bytes: Vec<u8>,
    entries: Vec<Entry>,
    dead: usize,
}

impl Flat {
    fn name(&self, e: Entry) -> &[u8] {
        self.bytes.get(e.at..e.at + e.name).unwrap_or_default()
    }

    fn value(&self, e: Entry) -> &[u8] {
        let start = e.at + e.name;
        self.bytes.get(start..start + e.value).unwrap_or_default()
    }

    fn push_bytes(&mut self, name: &[u8], lowercase: bool, value: &[u8]) -> Entry {
        let at = self.bytes.len();
        if lowercase {
            self.bytes.extend(name.iter().map(u8::to_ascii_lowercase));
        } else {
            self.bytes.extend_from_slice(name);
        }
        self.bytes.extend_from_slice(value);
        Entry {
            at,
            name: name.len(),
            value: value.len(),
        }
    }

    /// Removes every entry whose name satisfies `matches`; returns how many.
    fn remove_where(&mut self, mut matches: impl FnMut(&[u8]) -> bool) -> usize {
        let before = self.entries.len();
        let mut dead = 0;
        let bytes = &self.bytes;
        self.entries.retain(|&e| {
            let hit = matches(bytes.get(e.at..e.at + e.name).unwrap_or_default());
            if hit {
                dead += e.name + e.value;
            }
            !hit
        });
        self.dead += dead;
        self.maybe_compact();
        before - self.entries.len()
    }

    fn maybe_compact(&mut self) {
        if self.dead > 4096 && self.dead > self.bytes.len() / 2 {
            self.compact();
        }
    }

    fn compact(&mut self) {
        let mut bytes = Vec::with_capacity(self.bytes.len() - self.dead);
        for e in &mut self.entries {
            let start = bytes.len();
            bytes.extend_from_slice(
                self.bytes
                    .get(e.at..e.at + e.name + e.value)
                    .unwrap_or_default(),
            );
            e.at = start;
        }
        self.bytes = bytes;
        self.dead = 0;
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.entries.clear();
        self.dead = 0;
    }

    /// Bytes of the live names and values.
    fn live(&self) -> usize {
        self.bytes.len() - self.dead
    }

    fn iter(&self) -> Iter<'_> {
        Iter {
            flat: self,
            entries: self.entries.iter(),
        }
    }
}

/// Iterator over `(name, value)` pairs of a [`HeaderMap`] or [`Properties`].
#[derive(Clone)]
pub struct Iter<'h> {
    flat: &'h Flat,
    entries: std::slice::Iter<'h, Entry>,
}

impl<'h> Iterator for Iter<'h> {
    type Item = (&'h [u8], &'h [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let e = *self.entries.next()?;
        Some((self.flat.name(e), self.flat.value(e)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.entries.size_hint()
    }
}

impl ExactSizeIterator for Iter<'_> {}

/// An HTTP header (or trailer) map with Envoy's rules; see the module doc.
#[derive(Clone, Default)]
pub struct HeaderMap {
    flat: Flat,
    /// Entries `..pseudo` are the pseudo-headers.
    pseudo: usize,
}

fn is_pseudo(name: &[u8]) -> bool {
    name.first() == Some(&b':')
}

impl HeaderMap {
    pub fn new() -> HeaderMap {
        HeaderMap::default()
    }

    /// Appends `name: value` (after the other pseudo-headers if `name` is
    /// one); the name is stored lowercased.
    pub fn add(&mut self, name: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        let (name, value) = (name.as_ref(), value.as_ref());
        let entry = self.flat.push_bytes(name, true, value);
        if is_pseudo(name) {
            self.flat.entries.insert(self.pseudo, entry);
            self.pseudo += 1;
        } else {
            self.flat.entries.push(entry);
        }
    }

    /// Envoy's `setCopy`: removes every `name` entry, then adds one.
    pub fn replace(&mut self, name: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        let name = name.as_ref();
        self.remove(name);
        self.add(name, value);
    }

    /// Removes every `name` entry; returns how many there were.
    pub fn remove(&mut self, name: impl AsRef<[u8]>) -> usize {
        let name = name.as_ref();
        let removed = self.flat.remove_where(|n| n.eq_ignore_ascii_case(name));
        if removed > 0 && is_pseudo(name) {
            self.pseudo -= removed.min(self.pseudo);
        }
        removed
    }

    /// The first value of `name` (case-insensitive).
    pub fn get(&self, name: impl AsRef<[u8]>) -> Option<&[u8]> {
        let name = name.as_ref();
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Every value of `name` (case-insensitive), in order.
    pub fn get_all<'h>(&'h self, name: &'h [u8]) -> impl Iterator<Item = &'h [u8]> + Clone + 'h {
        self.iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// `(name, value)` pairs in map order.
    pub fn iter(&self) -> Iter<'_> {
        self.flat.iter()
    }

    pub fn len(&self) -> usize {
        self.flat.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flat.entries.is_empty()
    }

    /// Empties the map, keeping its buffers for reuse.
    pub fn clear(&mut self) {
        self.flat.clear();
        self.pseudo = 0;
    }

    /// Envoy's `HeaderMap::byteSize`: the sum of name and value lengths.
    pub fn byte_size(&self) -> usize {
        self.flat.live()
    }

    /// Replaces the contents with `pairs`, keeping the buffers.
    pub fn set_pairs<'a>(&mut self, pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) {
        self.clear();
        for (k, v) in pairs {
            self.add(k, v);
        }
    }

    /// Copies `other` into `self`, keeping `self`'s buffers.
    pub fn copy_from(&mut self, other: &HeaderMap) {
        self.flat.bytes.clone_from(&other.flat.bytes);
        self.flat.entries.clone_from(&other.flat.entries);
        self.flat.dead = other.flat.dead;
        self.pseudo = other.pseudo;
    }
}

impl<K: AsRef<[u8]>, V: AsRef<[u8]>> FromIterator<(K, V)> for HeaderMap {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in iter {
            map.add(k, v);
        }
        map
    }
}

impl PartialEq for HeaderMap {
    fn eq(&self, other: &HeaderMap) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for HeaderMap {}

fn debug_pairs(f: &mut fmt::Formatter<'_>, pairs: Iter<'_>) -> fmt::Result {
    f.debug_list()
        .entries(pairs.map(|(k, v)| (String::from_utf8_lossy(k), String::from_utf8_lossy(v))))
        .finish()
}

impl fmt::Debug for HeaderMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_pairs(f, self.iter())
    }
}

/// Attributes keyed by exact byte paths; setting a path again replaces its
/// value in place. Used for the filter state a guest sets during a hop and
/// for per-hop attribute overrides.
#[derive(Clone, Default)]
pub struct Properties {
    flat: Flat,
}

impl Properties {
    pub fn new() -> Properties {
        Properties::default()
    }

    /// Sets `path` to `value`, replacing an earlier value.
    pub fn set(&mut self, path: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        let path = path.as_ref();
        let entry = self.flat.push_bytes(path, false, value.as_ref());
        let flat = &mut self.flat;
        match flat.entries.iter().position(|&e| flat.name(e) == path) {
            Some(i) => {
                flat.dead += flat.entries[i].name + flat.entries[i].value;
                flat.entries[i] = entry;
                flat.maybe_compact();
            }
            None => flat.entries.push(entry),
        }
    }

    pub fn get(&self, path: impl AsRef<[u8]>) -> Option<&[u8]> {
        let path = path.as_ref();
        self.iter().find(|(n, _)| *n == path).map(|(_, v)| v)
    }

    /// `(path, value)` pairs in the order they were first set.
    pub fn iter(&self) -> Iter<'_> {
        self.flat.iter()
    }

    pub fn len(&self) -> usize {
        self.flat.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flat.entries.is_empty()
    }

    pub fn clear(&mut self) {
        self.flat.clear();
    }

    /// Bytes of the live paths and values.
    pub fn byte_size(&self) -> usize {
        self.flat.live()
    }
}

impl<K: AsRef<[u8]>, V: AsRef<[u8]>> FromIterator<(K, V)> for Properties {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Properties {
        let mut map = Properties::new();
        for (k, v) in iter {
            map.set(k, v);
        }
        map
    }
}

impl PartialEq for Properties {
    fn eq(&self, other: &Properties) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Properties {}

impl fmt::Debug for Properties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_pairs(f, self.iter())
    }
}

#[cfg(test)]
mod tests;
