//! Whole commits read straight from git's pack files, for the long walks only: one reader per
//! thread, no lock shared with any other.
//!
//! Why not libgit2 alone: libgit2 keeps one `git_pack_file` per pack for the whole process and
//! takes its mutex (and a global window mutex) for every object it reads, so threads inflating
//! commits side by side mostly wait for each other (issue 18's profile: futex waits and wakes
//! under `git_pack_entry_find`, about a tenth of the CPU). Not gitoxide's `gix-odb` either: it
//! would be a second object database of some thirty crates for this one fast path.
//!
//! What is read here is the smallest part of the pack format (git's
//! Documentation/gitformat-pack.txt) that whole commits need: version-2 `.idx` files (fanout,
//! sorted ids, offsets), and a pack entry's header and zlib stream when the entry is a whole
//! object. Everything else is *not answered* and the caller asks libgit2, which reads any
//! object git can: deltas (git seldom deltifies commits), loose objects, packs whose index is
//! another version, packs in alternates, a pack whose `.idx` and `.pack` do not belong
//! together (checked as git checks them when it opens a pack: the object count in the pack
//! header and the pack's trailing checksum copied in the index), an entry that does not
//! inflate to exactly its declared size. So an answer from here is the entry git itself would
//! inflate, and a non-answer costs only the libgit2 read it replaces.
//!
//! Files are read with `pread` into per-thread windows (mapping them needs unsafe code). The
//! `.idx` tables are read once per walk and shared by its threads.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::id::ObjectKind;
use crate::object::Oid;

/// Bytes read from a pack at a time; a commit entry is a few hundred bytes and git writes a
/// pack's commits next to each other, newest first, which is the order a walk asks for them.
#[cfg(not(test))]
const WINDOW: usize = 256 * 1024;
/// Small in tests, so that entries cross windows and outgrow them.
#[cfg(test)]
const WINDOW: usize = 1000;
/// An entry declaring more than this is left to libgit2 (no commit is this large; a blob
/// could be, and this reader never needs one).
const MAX_ENTRY: u64 = 64 * 1024 * 1024;
/// `.idx` tables larger than this in total are not read: a walk long enough to use this reader
/// gains less than reading them would cost.
const MAX_INDEX_BYTES: u64 = 1 << 30;

/// One pack's index tables, as git's `.idx` version 2 lays them out.
struct PackIndex {
    pack_path: PathBuf,
    pack: File,
    /// Where the entries end (the pack's trailing checksum follows).
    data_end: u64,
    hash_len: usize,
    /// fanout[b]: how many ids start with a byte <= b.
    fanout: Vec<u32>,
    /// The sorted ids, `hash_len` bytes each.
    ids: Vec<u8>,
    /// Big-endian 32-bit offsets; with the top bit set, an index into `large`.
    offsets: Vec<u8>,
    /// Big-endian 64-bit offsets.
    large: Vec<u8>,
}

/// Where an object is: which pack, at what offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Location {
    pack: usize,
    offset: u64,
}

/// The packs of some object directories, indexed; shared by every thread of a walk.
pub(crate) struct Packs {
    packs: Vec<PackIndex>,
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes(s.try_into().ok()?))
}

fn be64(b: &[u8], at: usize) -> Option<u64> {
    let s = b.get(at..at.checked_add(8)?)?;
    Some(u64::from_be_bytes(s.try_into().ok()?))
}

fn read_exact_at(file: &File, len: u64, offset: u64) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; usize::try_from(len).ok()?];
    file.read_exact_at(&mut buf, offset).ok()?;
    Some(buf)
}

impl PackIndex {
    /// A `.idx` file and its `.pack`, checked as git checks them when it opens a pack; None
    /// for anything else (this reader then never answers for that pack).
    fn open(idx_path: &Path, hash_len: usize, budget: &mut u64) -> Option<PackIndex> {
        let idx = File::open(idx_path).ok()?;
        let idx_len = idx.metadata().ok()?.len();
        // Header, fanout, then per object an id, a CRC and an offset; two checksums at the end.
        let head = read_exact_at(&idx, 8 + 256 * 4, 0)?;
        if head.get(..8)? != b"\xfftOc\x00\x00\x00\x02" {
            return None;
        }
        let fanout: Vec<u32> = (0..256)
            .map(|i| be32(&head, 8 + 4 * i))
            .collect::<Option<_>>()?;
        if fanout.windows(2).any(|w| w.first() > w.get(1)) {
            return None;
        }
        let n = u64::from(*fanout.last()?);
        let h = hash_len as u64;
        let ids_at = 8 + 256 * 4;
        let crc_at = ids_at + n * h;
        let off_at = crc_at + n * 4;
        let large_at = off_at + n * 4;
        let trailer = 2 * h;
        let large_len = idx_len.checked_sub(large_at + trailer)?;
        if large_len % 8 != 0 {
            return None;
        }
        let size = n * h + n * 4 + large_len;
        *budget = budget.checked_sub(size)?;
        let ids = read_exact_at(&idx, n * h, ids_at)?;
        let offsets = read_exact_at(&idx, n * 4, off_at)?;
        let large = read_exact_at(&idx, large_len, large_at)?;
        let pack_checksum = read_exact_at(&idx, h, large_at + large_len)?;

        // The pack git would pair with it: same name, same object count, same checksum.
        let pack_path = idx_path.with_extension("pack");
        let pack = File::open(&pack_path).ok()?;
        let pack_len = pack.metadata().ok()?.len();
        let header = read_exact_at(&pack, 12, 0)?;
        if header.get(..4)? != b"PACK"
            || !matches!(be32(&header, 4)?, 2 | 3)
            || u64::from(be32(&header, 8)?) != n
            || pack_len < 12 + h
            || read_exact_at(&pack, h, pack_len - h)? != pack_checksum
        {
            return None;
        }
        Some(PackIndex {
            pack_path,
            pack,
            data_end: pack_len - h,
            hash_len,
            fanout,
            ids,
            offsets,
            large,
        })
    }

    fn find(&self, id: &[u8]) -> Option<u64> {
        let first = usize::from(*id.first()?);
        let lo = if first == 0 {
            0
        } else {
            *self.fanout.get(first - 1)? as usize
        };
        let hi = *self.fanout.get(first)? as usize;
        let h = self.hash_len;
        // Most probes differ in the first eight bytes: compare those as one integer, and the
        // whole id only when they are equal.
        let key = be64(id, 0)?;
        let (mut lo, mut hi) = (lo, hi);
        // Ids are hashes, evenly spread: the first probes interpolate on those eight bytes
        // (about three probes instead of eleven, each a likely cache miss in a large index),
        // then bisection, so that an uneven index costs at most four probes more.
        let mut probes = 0;
        while lo < hi {
            let mid = if probes < 4 && hi - lo > 16 {
                let first = be64(&self.ids, lo * h)?;
                let last = be64(&self.ids, (hi - 1) * h)?;
                if key <= first {
                    lo
                } else if key >= last {
                    hi - 1
                } else {
                    let span = u128::from(last - first);
                    let step = u128::from(key - first) * (hi - 1 - lo) as u128 / span;
                    lo + usize::try_from(step).ok()?
                }
            } else {
                lo + (hi - lo) / 2
            };
            probes += 1;
            let at = mid * h;
            let order = match be64(&self.ids, at)?.cmp(&key) {
                std::cmp::Ordering::Equal => self.ids.get(at..at + h)?.cmp(id),
                order => order,
            };
            match order {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => {
                    let off = be32(&self.offsets, mid * 4)?;
                    return if off & 0x8000_0000 == 0 {
                        Some(u64::from(off))
                    } else {
                        be64(&self.large, usize::try_from(off & 0x7fff_ffff).ok()? * 8)
                    };
                }
            }
        }
        None
    }
}

/// The `pack-*.idx` files directly in an objects directory, by name.
fn index_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir.join("pack")) else {
        return Vec::new();
    };
    let mut idx: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|e| e == "idx")
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("pack-"))
        })
        .collect();
    idx.sort();
    idx
}

impl Packs {
    /// The version-2 packs directly in `dirs` (each an objects directory), in that order.
    pub(crate) fn open(dirs: &[&Path], hash_len: usize) -> Packs {
        let mut budget = MAX_INDEX_BYTES;
        let packs = dirs
            .iter()
            .flat_map(|dir| index_files(dir))
            .filter_map(|p| PackIndex::open(&p, hash_len, &mut budget))
            .collect();
        Packs { packs }
    }

    /// What [`Packs::open`] would read, about: the size of the index files.
    pub(crate) fn index_bytes(dirs: &[&Path]) -> u64 {
        dirs.iter()
            .flat_map(|dir| index_files(dir))
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum()
    }

    /// How many packs this reader answers for.
    pub(crate) fn len(&self) -> usize {
        self.packs.len()
    }

    pub(crate) fn find(&self, id: &Oid) -> Option<Location> {
        let id = id.as_bytes();
        self.packs.iter().enumerate().find_map(|(pack, p)| {
            (p.hash_len == id.len())
                .then(|| p.find(id))
                .flatten()
                .map(|offset| Location { pack, offset })
        })
    }
}

/// One thread's reader: its window into the packs and its inflater.
pub(crate) struct PackReader {
    packs: Arc<Packs>,
    window: Window,
    inflate: flate2::Decompress,
}

/// The bytes last read from a pack.
#[derive(Default)]
struct Window {
    pack: usize,
    start: u64,
    data: Vec<u8>,
}

impl Window {
    /// At least `want` bytes (fewer at the end of the pack's entries) from `offset`.
    fn bytes(&mut self, packs: &Packs, pack: usize, offset: u64, want: usize) -> Option<&[u8]> {
        let p = packs.packs.get(pack)?;
        let end = p.data_end;
        if offset >= end {
            return None;
        }
        let have = self.pack == pack
            && offset >= self.start
            && offset - self.start <= self.data.len() as u64
            && (self.data.len() as u64 - (offset - self.start) >= want as u64
                || self.start + self.data.len() as u64 == end);
        if !have {
            let len = usize::try_from((end - offset).min(want.max(WINDOW) as u64)).ok()?;
            self.data.resize(len, 0);
            self.pack = pack;
            self.start = offset;
            if p.pack.read_exact_at(&mut self.data, offset).is_err() {
                self.data.clear();
                return None;
            }
        }
        self.data.get(usize::try_from(offset - self.start).ok()?..)
    }
}

impl PackReader {
    pub(crate) fn new(packs: Arc<Packs>) -> PackReader {
        PackReader {
            packs,
            window: Window::default(),
            inflate: flate2::Decompress::new(true),
        }
    }

    /// The object at `loc` when it is stored whole: its kind, its bytes in `out`. None when
    /// this reader does not answer (a delta, an entry too large, anything unexpected): the
    /// caller reads the object through libgit2 instead.
    pub(crate) fn read(&mut self, loc: Location, out: &mut Vec<u8>) -> Option<ObjectKind> {
        // The entry header: type in bits 4-6 of the first byte, the size in 4 + 7n bits.
        let head = self.window.bytes(&self.packs, loc.pack, loc.offset, 32)?;
        let mut i = 0;
        let mut c = *head.first()?;
        let kind = match (c >> 4) & 7 {
            1 => ObjectKind::Commit,
            2 => ObjectKind::Tree,
            3 => ObjectKind::Blob,
            4 => ObjectKind::Tag,
            _ => return None, // deltas (6, 7) and reserved types
        };
        let mut size = u64::from(c & 15);
        let mut shift = 4;
        while c & 0x80 != 0 {
            i += 1;
            c = *head.get(i)?;
            if shift > 57 {
                return None;
            }
            size |= u64::from(c & 0x7f) << shift;
            shift += 7;
        }
        if size > MAX_ENTRY {
            return None;
        }
        let size = usize::try_from(size).ok()?;
        let data_at = loc.offset + i as u64 + 1;
        // Inflate from the window; if the stream runs past it, read a window that holds the
        // whole entry (a zlib stream is at most a few bytes per KiB larger than its output).
        let mut want = size / 2 + 64;
        loop {
            out.clear();
            // One byte of room more than declared, so a stream that inflates larger is seen.
            out.reserve(size + 1);
            self.inflate.reset(true);
            let input = self.window.bytes(&self.packs, loc.pack, data_at, want)?;
            let input_len = input.len();
            let status = self
                .inflate
                .decompress_vec(input, out, flate2::FlushDecompress::Finish);
            match status {
                Ok(flate2::Status::StreamEnd) => {
                    return (out.len() == size).then_some(kind);
                }
                // The window ended inside the stream: read more, unless it was the pack's end.
                Ok(_)
                    if (self.inflate.total_in() as usize) >= input_len
                        && out.len() <= size
                        && input_len >= want =>
                {
                    want = want.checked_mul(2)?.max(size + 1024);
                    if want as u64 > MAX_ENTRY * 2 {
                        return None;
                    }
                }
                _ => return None,
            }
        }
    }

    /// Where the object is, when one of this reader's packs has it.
    pub(crate) fn find(&self, id: &Oid) -> Option<Location> {
        self.packs.find(id)
    }
}

impl std::fmt::Debug for Packs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.packs.iter().map(|p| &p.pack_path))
            .finish()
    }
}

/// The fuzz target `pack`: `idx` and `pack` written as the one pack of the objects directory
/// `dir`, opened as a walk opens packs, and every object the index names (up to 1,024) looked
/// up and read. Returns how many were answered. Must not panic whatever the bytes.
pub fn fuzz_pack(dir: &Path, idx: &[u8], pack: &[u8]) -> std::io::Result<usize> {
    let pack_dir = dir.join("pack");
    std::fs::create_dir_all(&pack_dir)?;
    std::fs::write(pack_dir.join("pack-fuzz.idx"), idx)?;
    std::fs::write(pack_dir.join("pack-fuzz.pack"), pack)?;
    let packs = Arc::new(Packs::open(&[dir], 20));
    let mut reader = PackReader::new(Arc::clone(&packs));
    let mut out = Vec::new();
    let mut answered = 0;
    for p in &packs.packs {
        for id in p.ids.chunks_exact(p.hash_len).take(1024) {
            let Some(id) = Oid::from_bytes(id) else {
                continue;
            };
            if let Some(loc) = reader.find(&id) {
                if reader.read(loc, &mut out).is_some() {
                    answered += 1;
                }
            }
        }
    }
    Ok(answered)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::ObjectId;
    use crate::testutil::git;
    use std::collections::{HashMap, HashSet};
    use std::io::Write as _;

    /// `n` commits on `main` after `from`: long, similar messages and a growing file, so that
    /// git stores commits, trees and blobs as deltas as well as whole.
    fn history(repo: &Path, from: usize, n: usize) {
        let mut s = Vec::new();
        let mut file = String::new();
        for i in from..from + n {
            file.push_str(&format!(
                "line {i} of a file that grows by one line a commit\n"
            ));
            let msg = format!(
                "Change {i}\n\n{}\nCo-authored-by: Claude <noreply@anthropic.com>\n",
                "A long body that repeats from commit to commit, so git deltifies it. ".repeat(30)
            );
            writeln!(s, "commit refs/heads/main\nmark :{}", i + 1).unwrap();
            writeln!(s, "committer A <a@x> {} +0000", 1_700_000_000 + i * 60).unwrap();
            writeln!(s, "data {}\n{msg}", msg.len()).unwrap();
            if i > 0 && i == from {
                writeln!(s, "from refs/heads/main^0").unwrap();
            }
            writeln!(s, "M 644 inline f\ndata {}\n{file}", file.len()).unwrap();
        }
        git(repo, &["fast-import", "--quiet"], Some(&s));
    }

    /// A repository with several packs (a repacked one full of deltas, one from fast-import,
    /// one whose index keeps every offset in its 64-bit table, one with a version-1 index) and
    /// loose objects: every object this reader answers for has exactly the kind and bytes
    /// libgit2 reads, and it answers for exactly the whole entries of version-2 packs.
    #[test]
    fn every_whole_entry_is_read_as_libgit2_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("r.git");
        git(
            dir.path(),
            &["init", "-q", "--bare", repo.to_str().unwrap()],
            None,
        );
        history(&repo, 0, 300);
        git(
            &repo,
            &["repack", "-adfq", "--window=50", "--depth=20"],
            None,
        );
        history(&repo, 300, 100);
        let recent = git(&repo, &["rev-list", "--objects", "main~40..main"], None);
        let ids: String = recent.lines().map(|l| format!("{}\n", &l[..40])).collect();
        let large = git(
            &repo,
            &[
                "pack-objects",
                "-q",
                "--index-version=2,64",
                "objects/pack/pack",
            ],
            Some(ids.as_bytes()),
        );
        let older = git(&repo, &["rev-list", "--objects", "main~80..main~40"], None);
        let older: String = older.lines().map(|l| format!("{}\n", &l[..40])).collect();
        let v1 = git(
            &repo,
            &[
                "pack-objects",
                "-q",
                "--index-version=1",
                "objects/pack/pack",
            ],
            Some(older.as_bytes()),
        );
        git(
            &repo,
            &["hash-object", "-w", "--stdin"],
            Some(b"a loose blob\n"),
        );

        // Each v2 pack's entries, from git: offset -> is it a delta.
        let mut entries: HashMap<(PathBuf, u64), bool> = HashMap::new();
        let pack_dir = repo.join("objects/pack");
        for e in std::fs::read_dir(&pack_dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "idx") && !p.to_str().unwrap().contains(v1.trim())
            {
                let out = git(&repo, &["verify-pack", "-v", p.to_str().unwrap()], None);
                for line in out.lines() {
                    let f: Vec<&str> = line.split_whitespace().collect();
                    if f.len() >= 5 && f[0].len() == 40 {
                        let delta = f.len() == 7;
                        entries.insert((p.with_extension("pack"), f[4].parse().unwrap()), delta);
                    }
                }
            }
        }

        let packs = Arc::new(Packs::open(&[&repo.join("objects")], 20));
        assert_eq!(packs.len(), 3, "the version-1 index is not read: {packs:?}");
        let mut reader = PackReader::new(Arc::clone(&packs));
        let lib_repo = git2::Repository::open(&repo).unwrap();
        let lib = lib_repo.odb().unwrap();
        let all = git(
            &repo,
            &[
                "cat-file",
                "--batch-all-objects",
                "--batch-check=%(objectname)",
            ],
            None,
        );
        let (mut whole, mut deltas, mut not_found) = (0, 0, 0);
        let mut from_large = HashSet::new();
        let mut buf = Vec::new();
        for hex in all.lines() {
            let id = Oid::from_object_id(&ObjectId::parse(hex).unwrap());
            let Some(loc) = reader.find(&id) else {
                not_found += 1;
                continue;
            };
            let path = packs.packs[loc.pack].pack_path.clone();
            let delta = entries[&(path.clone(), loc.offset)];
            match reader.read(loc, &mut buf) {
                Some(kind) => {
                    assert!(!delta, "{hex}: a delta answered as a whole object");
                    let obj = lib.read(git2::Oid::from_str(hex).unwrap()).unwrap();
                    assert_eq!(kind, ObjectKind::from_git2(obj.kind()), "{hex}");
                    assert!(buf == obj.data(), "{hex}: bytes differ from libgit2's");
                    whole += 1;
                    if path.to_str().unwrap().contains(large.trim()) {
                        from_large.insert(loc.offset);
                    }
                }
                None => {
                    assert!(delta, "{hex}: a whole entry at {loc:?} not answered");
                    deltas += 1;
                }
            }
        }
        assert_eq!(not_found, 1, "only the loose blob is outside the v2 packs");
        assert!(
            whole > 500 && deltas > 100,
            "whole {whole}, deltas {deltas}"
        );
        assert!(
            from_large.iter().any(|&o| o > 64),
            "no entry read through the 64-bit offset table"
        );
    }

    /// Lookups in large indexes, with evenly spread ids (where the search interpolates) and
    /// with ids bunched at both ends of a fanout bucket (where interpolating guesses badly):
    /// every id is found at its offset, and ids next to them are not found.
    #[test]
    fn find_agrees_with_a_plain_search_on_large_and_uneven_indexes() {
        let file = tempfile::tempfile().unwrap();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let even: Vec<[u8; 20]> = (0..100_000)
            .map(|_| {
                let mut id = [0u8; 20];
                for c in id.chunks_mut(8) {
                    let r = next().to_be_bytes();
                    c.copy_from_slice(&r[..c.len()]);
                }
                id
            })
            .collect();
        // Uneven: in bucket 0x42 only, most ids just above 0x4200.. and a few near 0x42ff..
        let uneven: Vec<[u8; 20]> = (0..20_000u32)
            .map(|i| {
                let mut id = [0u8; 20];
                id[0] = 0x42;
                if i % 1000 == 0 {
                    id[1] = 0xff;
                }
                id[12..16].copy_from_slice(&i.to_be_bytes());
                id[19] = (next() & 0xfe) as u8; // even: `id + 1` is never present
                id
            })
            .collect();
        for mut ids in [even, uneven] {
            ids.sort();
            ids.dedup();
            let mut fanout = vec![0u32; 256];
            for id in &ids {
                for f in &mut fanout[usize::from(id[0])..] {
                    *f += 1;
                }
            }
            let index = PackIndex {
                pack_path: PathBuf::new(),
                pack: file.try_clone().unwrap(),
                data_end: 0,
                hash_len: 20,
                fanout,
                ids: ids.concat(),
                offsets: (0..ids.len() as u32)
                    .flat_map(|i| (i * 7).to_be_bytes())
                    .collect(),
                large: Vec::new(),
            };
            for (i, id) in ids.iter().enumerate() {
                assert_eq!(index.find(id), Some(i as u64 * 7));
                let mut other = *id;
                other[19] ^= 1;
                if ids.binary_search(&other).is_err() {
                    assert_eq!(index.find(&other), None);
                }
            }
        }
    }

    /// An index and a pack that do not belong together (another pack's checksum, another
    /// object count, a truncated pack) are not read, as git refuses to open them.
    #[test]
    fn a_pack_that_does_not_match_its_index_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("r.git");
        git(
            dir.path(),
            &["init", "-q", "--bare", repo.to_str().unwrap()],
            None,
        );
        history(&repo, 0, 20);
        git(&repo, &["repack", "-adq"], None);
        let objects = repo.join("objects");
        assert_eq!(Packs::open(&[&objects], 20).len(), 1);
        let pack = std::fs::read_dir(objects.join("pack"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|x| x == "pack"))
            .unwrap();
        let good = std::fs::read(&pack).unwrap();
        let mut perms = std::fs::metadata(&pack).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        std::fs::set_permissions(&pack, perms).unwrap();
        let mut bad_sum = good.clone();
        *bad_sum.last_mut().unwrap() ^= 1;
        let mut bad_count = good.clone();
        bad_count[11] ^= 1;
        for bad in [bad_sum, bad_count, good[..good.len() - 1].to_vec()] {
            std::fs::write(&pack, &bad).unwrap();
            assert_eq!(Packs::open(&[&objects], 20).len(), 0);
        }
        std::fs::write(&pack, &good).unwrap();
        assert_eq!(Packs::open(&[&objects], 20).len(), 1);

        // The fuzz target's body reads the same pair: every whole entry (git's count).
        let idx_path = pack.with_extension("idx");
        let listed = git(
            &repo,
            &["verify-pack", "-v", idx_path.to_str().unwrap()],
            None,
        );
        let whole = listed
            .lines()
            .filter(|l| l.split_whitespace().count() == 5)
            .count();
        let idx = std::fs::read(&idx_path).unwrap();
        let scratch = tempfile::tempdir().unwrap();
        assert!(whole > 0);
        assert_eq!(fuzz_pack(scratch.path(), &idx, &good).unwrap(), whole);
    }
}
