//! git's commit-graph (`objects/info/commit-graph`, or a chain of layers under
//! `objects/info/commit-graphs/`; git's Documentation/gitformat-commit-graph.txt), read so that
//! a long walk learns each commit's parents and date without waiting for the object to be
//! inflated, and the inflating can move to other cores.
//!
//! The file is a cache that anyone with write access to the repository can leave stale or
//! corrupt, so it is never trusted: it is only a guess of what the object says. The walk checks
//! every entry it used against the commit object itself (`walk.rs`) and, on any difference,
//! walks again from objects alone. The checks here only keep the reading in bounds (header,
//! chunk table, fanout order, sizes, parent positions); like git when it loads the file, the
//! trailing checksum is not recomputed (that would read the whole file for every long walk),
//! because nothing read here is believed without its object.
//!
//! The file is read through a small cache of 4 KiB blocks (`pread`), not mapped: mapping needs
//! unsafe code. A walk touches the blocks git's mapping would.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::object::{Links, Oid};

const BLOCK: u64 = 4096;
const PARENT_NONE: u32 = 0x7000_0000;
const EXTRA_EDGES: u32 = 0x8000_0000;
const EDGE_LAST: u32 = 0x8000_0000;
/// A chain deeper than this is not a chain git writes (it merges layers long before).
const MAX_LAYERS: usize = 512;

/// A file read by blocks, each read once.
struct Blocks {
    file: File,
    len: u64,
    cache: HashMap<u64, Box<[u8]>>,
}

impl Blocks {
    fn open(path: &Path) -> Option<Blocks> {
        let file = File::open(path).ok()?;
        let len = file.metadata().ok()?.len();
        Some(Blocks {
            file,
            len,
            cache: HashMap::new(),
        })
    }

    /// `out.len()` bytes at `offset`, or None past the end or on a read error.
    fn read(&mut self, offset: u64, out: &mut [u8]) -> Option<()> {
        let end = offset.checked_add(out.len() as u64)?;
        if end > self.len {
            return None;
        }
        let mut done = 0usize;
        while done < out.len() {
            let at = offset + done as u64;
            let block = at / BLOCK;
            let data = match self.cache.entry(block) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    let start = block * BLOCK;
                    let size = usize::try_from(BLOCK.min(self.len - start)).ok()?;
                    let mut buf = vec![0u8; size].into_boxed_slice();
                    self.file.read_exact_at(&mut buf, start).ok()?;
                    e.insert(buf)
                }
            };
            let from = usize::try_from(at - block * BLOCK).ok()?;
            let src = data.get(from..)?;
            let want = out.get_mut(done..)?;
            let n = src.len().min(want.len());
            want.get_mut(..n)?.copy_from_slice(src.get(..n)?);
            done += n;
        }
        Some(())
    }

    fn be32(&mut self, offset: u64) -> Option<u32> {
        let mut b = [0u8; 4];
        self.read(offset, &mut b)?;
        Some(u32::from_be_bytes(b))
    }
}

/// One file of the graph: a single file, or one layer of a chain.
struct Layer {
    file: Blocks,
    /// Commits in the layers below (global position of this layer's first commit).
    base: u32,
    count: u32,
    fanout: [u32; 256],
    oid_lookup: u64,
    commit_data: u64,
    /// Offset and number of entries of the extra edge list.
    edges: Option<(u64, u32)>,
}

/// One commit as the graph describes it.
pub(crate) struct GraphCommit {
    pub(crate) links: Links,
    /// Graph positions of `links.parents`, in the same order.
    pub(crate) parent_positions: Vec<u32>,
}

/// An opened commit-graph: every layer, base first. Only the walk reads it.
pub struct CommitGraph {
    layers: Vec<Layer>,
    hash_len: usize,
}

impl CommitGraph {
    /// The graph of an object directory as git would load it (the single file first, else the
    /// chain), or None when there is none or it does not read as one.
    pub(crate) fn open(objects: &Path, hash_len: usize) -> Option<CommitGraph> {
        let info = objects.join("info");
        let single = info.join("commit-graph");
        let layers = if single.is_file() {
            vec![Layer::open(&single, hash_len, 0, 0)?]
        } else {
            let dir = info.join("commit-graphs");
            let chain = std::fs::read_to_string(dir.join("commit-graph-chain")).ok()?;
            let mut layers: Vec<Layer> = Vec::new();
            for line in chain.lines() {
                if layers.len() >= MAX_LAYERS
                    || line.len() != hash_len * 2
                    || !line.bytes().all(|b| b.is_ascii_hexdigit())
                {
                    return None;
                }
                let base = layers
                    .last()
                    .map_or(Some(0), |l| l.base.checked_add(l.count))?;
                let path = dir.join(format!("graph-{line}.graph"));
                layers.push(Layer::open(&path, hash_len, layers.len(), base)?);
            }
            layers
        };
        let last = layers.last()?;
        // Positions at and above PARENT_NONE cannot be named as parents.
        if last.base.checked_add(last.count)? >= PARENT_NONE {
            return None;
        }
        Some(CommitGraph { layers, hash_len })
    }

    /// The graph position of a commit, if the graph has it.
    pub(crate) fn lookup(&mut self, id: &Oid) -> Option<u32> {
        let want = id.as_bytes();
        if want.len() != self.hash_len {
            return None;
        }
        let first = usize::from(*want.first()?);
        let hash_len = self.hash_len;
        let mut buf = [0u8; 32];
        let buf = buf.get_mut(..hash_len)?;
        for layer in self.layers.iter_mut().rev() {
            let mut lo = if first == 0 {
                0
            } else {
                *layer.fanout.get(first - 1)?
            };
            let mut hi = *layer.fanout.get(first)?;
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                layer
                    .file
                    .read(layer.oid_lookup + u64::from(mid) * hash_len as u64, buf)?;
                match (*buf).cmp(want) {
                    std::cmp::Ordering::Equal => return layer.base.checked_add(mid),
                    std::cmp::Ordering::Less => lo = mid + 1,
                    std::cmp::Ordering::Greater => hi = mid,
                }
            }
        }
        None
    }

    fn oid_at(&mut self, pos: u32) -> Option<Oid> {
        let hash_len = self.hash_len;
        let layer = self.layer(pos)?;
        let mut buf = [0u8; 32];
        let buf = buf.get_mut(..hash_len)?;
        layer.file.read(
            layer.oid_lookup + u64::from(pos - layer.base) * hash_len as u64,
            buf,
        )?;
        Oid::from_bytes(buf)
    }

    fn layer(&mut self, pos: u32) -> Option<&mut Layer> {
        self.layers
            .iter_mut()
            .find(|l| pos >= l.base && pos - l.base < l.count)
    }

    /// The commit at a graph position, as git's `fill_commit_in_graph` reads it.
    pub(crate) fn commit(&mut self, pos: u32) -> Option<GraphCommit> {
        let hash_len = self.hash_len;
        let layer = self.layer(pos)?;
        let at = layer.commit_data + u64::from(pos - layer.base) * (hash_len as u64 + 16);
        let mut data = [0u8; 48];
        let data = data.get_mut(..hash_len + 16)?;
        layer.file.read(at, data)?;
        let word = |i: usize| -> Option<u32> {
            let b = data.get(hash_len + 4 * i..hash_len + 4 * i + 4)?;
            Some(u32::from_be_bytes(b.try_into().ok()?))
        };
        let (p1, p2, high, low) = (word(0)?, word(1)?, word(2)?, word(3)?);
        let tree = Oid::from_bytes(data.get(..hash_len)?)?;
        let time = (u64::from(high & 0x3) << 32) | u64::from(low);
        let mut positions = Vec::new();
        if p1 != PARENT_NONE {
            positions.push(p1);
            if p2 & EXTRA_EDGES != 0 {
                let (edges, n) = layer.edges?;
                let mut i = p2 & !EXTRA_EDGES;
                loop {
                    if i >= n {
                        return None;
                    }
                    let e = layer.file.be32(edges + 4 * u64::from(i))?;
                    positions.push(e & !EDGE_LAST);
                    if e & EDGE_LAST != 0 {
                        break;
                    }
                    i += 1;
                }
            } else if p2 != PARENT_NONE {
                positions.push(p2);
            }
        }
        let mut parents = Vec::with_capacity(positions.len());
        for &p in &positions {
            parents.push(self.oid_at(p)?);
        }
        Some(GraphCommit {
            links: Links {
                tree,
                parents,
                time,
            },
            parent_positions: positions,
        })
    }
}

impl Layer {
    /// Read and check one file's header, chunk table and fanout.
    fn open(path: &Path, hash_len: usize, bases: usize, base: u32) -> Option<Layer> {
        let mut file = Blocks::open(path)?;
        let mut header = [0u8; 8];
        file.read(0, &mut header)?;
        let hash_version = match hash_len {
            20 => 1,
            32 => 2,
            _ => return None,
        };
        let [b'C', b'G', b'P', b'H', 1, hv, chunks, base_count] = header else {
            return None;
        };
        if hv != hash_version || usize::from(base_count) != bases {
            return None;
        }
        // The table: `chunks` entries and a terminating one, each an id and an offset.
        let table_end = 8 + 12 * (u64::from(chunks) + 1);
        let data_end = file.len.checked_sub(hash_len as u64)?;
        let mut entries = Vec::with_capacity(usize::from(chunks) + 1);
        for i in 0..=u64::from(chunks) {
            let mut e = [0u8; 12];
            file.read(8 + 12 * i, &mut e)?;
            let (id, off) = e.split_at(4);
            let off = u64::from_be_bytes(off.try_into().ok()?);
            entries.push((<[u8; 4]>::try_from(id).ok()?, off));
        }
        let mut prev = table_end;
        for &(_, off) in &entries {
            if off < prev || off > data_end {
                return None;
            }
            prev = off;
        }
        if entries.last()?.0 != [0; 4] {
            return None;
        }
        let chunk = |id: &[u8; 4]| -> Option<(u64, u64)> {
            let i = entries.iter().position(|(c, _)| c == id)?;
            let start = entries.get(i)?.1;
            let end = entries.get(i + 1)?.1;
            Some((start, end - start))
        };
        let (fan_at, fan_len) = chunk(b"OIDF")?;
        let (oid_lookup, oidl_len) = chunk(b"OIDL")?;
        let (commit_data, cdat_len) = chunk(b"CDAT")?;
        if fan_len != 1024 {
            return None;
        }
        let mut raw = [0u8; 1024];
        file.read(fan_at, &mut raw)?;
        let mut fanout = [0u32; 256];
        let mut last = 0;
        for (f, b) in fanout.iter_mut().zip(raw.chunks_exact(4)) {
            *f = u32::from_be_bytes(b.try_into().ok()?);
            if *f < last {
                return None;
            }
            last = *f;
        }
        let count = last;
        if oidl_len != u64::from(count) * hash_len as u64
            || cdat_len != u64::from(count) * (hash_len as u64 + 16)
        {
            return None;
        }
        let edges = match chunk(b"EDGE") {
            Some((at, len)) if len % 4 == 0 => Some((at, u32::try_from(len / 4).ok()?)),
            Some(_) => return None,
            None => None,
        };
        Some(Layer {
            file,
            base,
            count,
            fanout,
            oid_lookup,
            commit_data,
            edges,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_garbage_graph_is_no_graph() {
        let dir = tempfile::tempdir().unwrap();
        assert!(CommitGraph::open(dir.path(), 20).is_none());
        std::fs::create_dir_all(dir.path().join("info")).unwrap();
        std::fs::write(
            dir.path().join("info/commit-graph"),
            b"CGPH\x01\x01\x03\x00",
        )
        .unwrap();
        assert!(CommitGraph::open(dir.path(), 20).is_none());
    }
}
