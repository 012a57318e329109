//! Append-only pack files: many objects compressed together in zstd blocks of ~1 MB, followed
//! by a sorted index and a trailer (layout in store-format.md). A pack is written to a temp
//! file, fsynced, renamed into place and its directory fsynced: it appears whole or not at all.
//! Readers check every length against the file size before touching the mapping, so a
//! truncated pack gives an error, never SIGBUS.

use crate::error::{Error, IoContext, Result};
use crate::failpoint;
use crate::id::{Kind, ObjectId};
use memmap2::Mmap;
use rayon::prelude::*;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const MAGIC: &[u8; 8] = b"SAGEPACK";
pub const TRAILER_MAGIC: &[u8; 8] = b"SAGEPEND";
pub const VERSION: u32 = 1;
pub const HEADER_LEN: u64 = 16;
pub const TRAILER_LEN: u64 = 64;
pub const BLOCK_ENTRY_LEN: usize = 16;
pub const INDEX_ENTRY_LEN: usize = 48;
pub const FANOUT_LEN: usize = 256 * 4;
/// Target uncompressed size of a block.
pub const BLOCK_TARGET: usize = 1 << 20;
/// No block may decompress to more than this (a bound against hostile packs).
pub const BLOCK_MAX: u32 = 32 << 20;

/// Where one object lives in a pack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    pub id: ObjectId,
    pub kind: Kind,
    pub block: u32,
    pub offset: u32,
    pub len: u32,
}

#[derive(Clone, Copy, Debug)]
pub struct BlockEntry {
    pub offset: u64,
    pub clen: u32,
    pub ulen: u32,
}

/// A pack opened for reading.
pub struct Pack {
    pub path: PathBuf,
    pub name: String,
    map: Mmap,
    blocks: Vec<BlockEntry>,
    index_start: usize,
    count: usize,
}

fn corrupt(path: &Path, why: impl Into<String>) -> Error {
    Error::CorruptPack {
        path: path.to_path_buf(),
        why: why.into(),
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

impl Pack {
    pub fn open(path: &Path) -> Result<Pack> {
        let file = File::open(path).ctx(|| format!("opening pack {}", path.display()))?;
        let len = file
            .metadata()
            .ctx(|| format!("reading size of {}", path.display()))?
            .len();
        if len < HEADER_LEN + TRAILER_LEN {
            return Err(corrupt(path, format!("truncated: {len} bytes")));
        }
        // SAFETY: packs are immutable once renamed into place; the length was checked above and
        // every offset below is checked against it before use.
        let map = unsafe { Mmap::map(&file) }.ctx(|| format!("mapping pack {}", path.display()))?;
        if map.len() as u64 != len {
            return Err(corrupt(path, "changed size while opening"));
        }
        if &map[..8] != MAGIC {
            return Err(corrupt(path, "not a sage pack (bad magic)"));
        }
        let version = u32_at(&map, 8);
        if version != VERSION {
            return Err(corrupt(
                path,
                format!("pack version {version} is not supported (this sage reads {VERSION})"),
            ));
        }
        let t = map.len() - TRAILER_LEN as usize;
        if &map[t..t + 8] != b"SAGEPIDX" || &map[t + 56..t + 64] != TRAILER_MAGIC {
            return Err(corrupt(path, "truncated or damaged trailer"));
        }
        let index_offset = u64_at(&map, t + 8);
        let block_count = u32_at(&map, t + 16) as usize;
        let count = u32_at(&map, t + 20) as usize;
        let index_len = block_count as u64 * BLOCK_ENTRY_LEN as u64
            + FANOUT_LEN as u64
            + count as u64 * INDEX_ENTRY_LEN as u64;
        if index_offset < HEADER_LEN || index_offset.checked_add(index_len) != Some(t as u64) {
            return Err(corrupt(path, "index does not fit the file"));
        }
        let mut blocks = Vec::with_capacity(block_count);
        let mut at = index_offset as usize;
        let mut expect = HEADER_LEN;
        for _ in 0..block_count {
            let b = BlockEntry {
                offset: u64_at(&map, at),
                clen: u32_at(&map, at + 8),
                ulen: u32_at(&map, at + 12),
            };
            if b.offset != expect || b.ulen > BLOCK_MAX {
                return Err(corrupt(path, "block table is inconsistent"));
            }
            expect = b.offset + b.clen as u64;
            blocks.push(b);
            at += BLOCK_ENTRY_LEN;
        }
        if expect != index_offset {
            return Err(corrupt(path, "blocks do not end where the index starts"));
        }
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        let pack = Pack {
            path: path.to_path_buf(),
            name,
            map,
            blocks,
            index_start: at + FANOUT_LEN,
            count,
        };
        Ok(pack)
    }

    pub fn object_count(&self) -> usize {
        self.count
    }
    pub fn block_count(&self) -> usize {
        self.blocks.len()
    }
    pub fn size(&self) -> u64 {
        self.map.len() as u64
    }

    fn fanout(&self, byte: usize) -> usize {
        let f = self.index_start - FANOUT_LEN;
        u32_at(&self.map, f + byte * 4) as usize
    }

    /// The i-th index entry, in id order.
    pub fn entry(&self, i: usize) -> Result<IndexEntry> {
        let at = self.index_start + i * INDEX_ENTRY_LEN;
        let b = &self.map[at..at + INDEX_ENTRY_LEN];
        let id = ObjectId::from_slice(&b[..32]).expect("32 bytes");
        let kind = Kind::from_u8(b[32]).ok_or_else(|| {
            corrupt(
                &self.path,
                format!("unknown object kind {} for {id}", b[32]),
            )
        })?;
        let e = IndexEntry {
            id,
            kind,
            block: u32_at(b, 36),
            offset: u32_at(b, 40),
            len: u32_at(b, 44),
        };
        let blk = self
            .blocks
            .get(e.block as usize)
            .ok_or_else(|| corrupt(&self.path, format!("object {id} names a missing block")))?;
        if e.offset as u64 + e.len as u64 > blk.ulen as u64 {
            return Err(corrupt(
                &self.path,
                format!("object {id} lies outside its block"),
            ));
        }
        Ok(e)
    }

    fn id_at(&self, i: usize) -> &[u8] {
        let at = self.index_start + i * INDEX_ENTRY_LEN;
        &self.map[at..at + 32]
    }

    pub fn find(&self, id: &ObjectId) -> Result<Option<IndexEntry>> {
        let first = id.0[0] as usize;
        let lo = if first == 0 {
            0
        } else {
            self.fanout(first - 1)
        };
        let hi = self.fanout(first).min(self.count);
        if lo > hi {
            return Err(corrupt(&self.path, "fanout table is inconsistent"));
        }
        let mut lo = lo;
        let mut hi = hi;
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.id_at(mid).cmp(&id.0[..]) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return self.entry(mid).map(Some),
            }
        }
        Ok(None)
    }

    /// Decompress one block (bounded by its recorded size).
    pub fn read_block(&self, block: u32) -> Result<Vec<u8>> {
        let b = self
            .blocks
            .get(block as usize)
            .ok_or_else(|| corrupt(&self.path, format!("no block {block}")))?;
        let raw = &self.map[b.offset as usize..(b.offset + b.clen as u64) as usize];
        let out = zstd::bulk::decompress(raw, b.ulen as usize).map_err(|e| {
            corrupt(
                &self.path,
                format!("block {block} does not decompress: {e}"),
            )
        })?;
        if out.len() != b.ulen as usize {
            return Err(corrupt(
                &self.path,
                format!("block {block} has the wrong length"),
            ));
        }
        Ok(out)
    }

    /// Visit every object with its bytes, one decompressed block at a time (blocks in order).
    pub fn for_each_object(
        &self,
        mut f: impl FnMut(&IndexEntry, &[u8]) -> Result<()>,
    ) -> Result<()> {
        let mut by_block: std::collections::BTreeMap<u32, Vec<IndexEntry>> =
            std::collections::BTreeMap::new();
        for i in 0..self.object_count() {
            let e = self.entry(i)?;
            by_block.entry(e.block).or_default().push(e);
        }
        for (block, entries) in by_block {
            let data = self.read_block(block)?;
            for e in &entries {
                f(e, &data[e.offset as usize..(e.offset + e.len) as usize])?;
            }
        }
        Ok(())
    }

    /// The stored checksum and the checksum of the bytes before the trailer.
    pub fn checksums(&self) -> ([u8; 32], [u8; 32]) {
        let t = self.map.len() - TRAILER_LEN as usize;
        let stored: [u8; 32] = self.map[t + 24..t + 56].try_into().expect("32 bytes");
        let actual = *blake3::hash(&self.map[..t]).as_bytes();
        (stored, actual)
    }

    /// The raw compressed bytes of a block (for transfer).
    pub fn raw_block(&self, block: u32) -> Option<&[u8]> {
        let b = self.blocks.get(block as usize)?;
        Some(&self.map[b.offset as usize..(b.offset + b.clen as u64) as usize])
    }

    pub fn blocks(&self) -> &[BlockEntry] {
        &self.blocks
    }
}

/// One zstd frame with a content checksum, so that damage inside a block is detected even
/// where the index is lost (salvage).
fn compress_block(b: &[u8], level: i32) -> std::io::Result<Vec<u8>> {
    let mut c = zstd::bulk::Compressor::new(level)?;
    c.set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(true))?;
    c.compress(b)
}

/// Salvage objects from a damaged pack: every block that still decompresses (zstd checksums
/// catch damage inside a block) is split by its object framing, and each object's id is
/// re-derived from its bytes. Block boundaries come from the pack's block table when it still
/// opens, else from decoding zstd frames one after another from the header on; a damaged block
/// is skipped, not the end of the salvage. Returns (kind, id, bytes).
pub fn salvage(path: &Path) -> Result<Vec<(Kind, ObjectId, Vec<u8>)>> {
    let mut out = Vec::new();
    if let Ok(pack) = Pack::open(path) {
        for b in 0..pack.block_count() {
            if let Ok(block) = pack.read_block(b as u32) {
                split_block(&block, &mut out);
            }
        }
        return Ok(out);
    }
    let data = std::fs::read(path).ctx(|| format!("reading {}", path.display()))?;
    if data.len() < HEADER_LEN as usize || &data[..8] != MAGIC {
        return Ok(out);
    }
    let mut at = HEADER_LEN as usize;
    while at < data.len() {
        let Ok(size) = zstd::zstd_safe::find_frame_compressed_size(&data[at..]) else {
            break;
        };
        if size == 0 || at + size > data.len() {
            break;
        }
        if let Ok(block) = zstd::bulk::decompress(&data[at..at + size], BLOCK_MAX as usize) {
            split_block(&block, &mut out);
        }
        at += size;
    }
    Ok(out)
}

/// The objects of one decompressed block (kind, u32 length, bytes; repeated).
fn split_block(block: &[u8], out: &mut Vec<(Kind, ObjectId, Vec<u8>)>) {
    let mut p = 0;
    while p + 5 <= block.len() {
        let Some(kind) = Kind::from_u8(block[p]) else {
            break;
        };
        let len = u32_at(block, p + 1) as usize;
        if p + 5 + len > block.len() {
            break;
        }
        let bytes = block[p + 5..p + 5 + len].to_vec();
        out.push((kind, ObjectId::hash(kind, &bytes), bytes));
        p += 5 + len;
    }
}

/// Writes one pack: objects are appended to the current block; full blocks are compressed in
/// parallel batches. `finish` writes the index and trailer, fsyncs and renames.
pub struct PackWriter {
    dir: PathBuf,
    tmp: PathBuf,
    file: std::io::BufWriter<File>,
    hasher: blake3::Hasher,
    written: u64,
    level: i32,
    /// The block being filled: [data, trees].
    current: [Vec<u8>; 2],
    /// Indexes into `entries` of the objects in each current block.
    members: [Vec<usize>; 2],
    sealed: Vec<Vec<u8>>,
    blocks: Vec<BlockEntry>,
    entries: Vec<IndexEntry>,
    raw_bytes: u64,
}

impl PackWriter {
    pub fn new(dir: &Path, level: i32) -> Result<PackWriter> {
        let tmp = dir.join(format!(
            "tmp-{}-{}.pack",
            std::process::id(),
            rand::random::<u64>()
        ));
        let f = File::create(&tmp).ctx(|| format!("creating {}", tmp.display()))?;
        let mut w = PackWriter {
            dir: dir.to_path_buf(),
            tmp,
            file: std::io::BufWriter::with_capacity(1 << 20, f),
            hasher: blake3::Hasher::new(),
            written: 0,
            level,
            current: [Vec::with_capacity(BLOCK_TARGET + 64 * 1024), Vec::new()],
            members: [Vec::new(), Vec::new()],
            sealed: Vec::new(),
            blocks: Vec::new(),
            entries: Vec::new(),
            raw_bytes: 0,
        };
        let mut header = Vec::with_capacity(16);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&VERSION.to_le_bytes());
        header.extend_from_slice(&0u32.to_le_bytes());
        w.write_raw(&header)?;
        Ok(w)
    }

    fn write_raw(&mut self, b: &[u8]) -> Result<()> {
        self.hasher.update(b);
        self.written += b.len() as u64;
        let tmp = &self.tmp;
        self.file
            .write_all(b)
            .ctx(|| format!("writing {}", tmp.display()))
    }

    pub fn object_count(&self) -> usize {
        self.entries.len()
    }
    /// Uncompressed bytes added so far.
    pub fn raw_bytes(&self) -> u64 {
        self.raw_bytes
    }
    pub fn compressed_bytes(&self) -> u64 {
        self.written
    }

    /// Append an object (the caller has checked that the store lacks it). Lines and blobs go
    /// to data blocks, tree objects (nodes, sessions, chunk lists, snapshots) to separate tree
    /// blocks, so that walking trees decompresses few blocks (as restic keeps tree blobs apart).
    pub fn add(&mut self, kind: Kind, id: ObjectId, bytes: &[u8]) -> Result<()> {
        let which = usize::from(!matches!(kind, Kind::Line | Kind::Blob));
        if !self.current[which].is_empty()
            && self.current[which].len() + bytes.len() + 5 > BLOCK_TARGET
        {
            self.seal(which)?;
        }
        let cur = &mut self.current[which];
        // Each object is framed in its block (kind, length) so that a pack whose index is lost
        // can still be salvaged block by block.
        cur.push(kind as u8);
        cur.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        self.members[which].push(self.entries.len());
        self.entries.push(IndexEntry {
            id,
            kind,
            block: u32::MAX, // set when the block is sealed
            offset: cur.len() as u32,
            len: bytes.len() as u32,
        });
        cur.extend_from_slice(bytes);
        self.raw_bytes += bytes.len() as u64;
        if self.current[which].len() >= BLOCK_TARGET {
            self.seal(which)?;
        }
        Ok(())
    }

    fn seal(&mut self, which: usize) -> Result<()> {
        if self.current[which].is_empty() {
            return Ok(());
        }
        let block = (self.blocks.len() + self.sealed.len()) as u32;
        for m in self.members[which].drain(..) {
            self.entries[m].block = block;
        }
        let next = Vec::with_capacity(BLOCK_TARGET + 64 * 1024);
        self.sealed
            .push(std::mem::replace(&mut self.current[which], next));
        if self.sealed.len() >= rayon::current_num_threads().max(2) * 4 {
            self.flush_sealed()?;
        }
        Ok(())
    }

    /// Compress the sealed blocks in parallel and write them in order.
    fn flush_sealed(&mut self) -> Result<()> {
        let level = self.level;
        let sealed = std::mem::take(&mut self.sealed);
        let compressed: Vec<std::io::Result<Vec<u8>>> = sealed
            .par_iter()
            .map(|b| compress_block(b, level))
            .collect();
        for (raw, c) in sealed.iter().zip(compressed) {
            let c = c.ctx(|| "compressing a block".to_string())?;
            let entry = BlockEntry {
                offset: self.written,
                clen: c.len() as u32,
                ulen: raw.len() as u32,
            };
            self.write_raw(&c)?;
            self.blocks.push(entry);
        }
        Ok(())
    }

    /// Write index and trailer, make the pack durable and rename it into place.
    /// Returns `None` (and removes the temp file) when no object was added.
    pub fn finish(mut self) -> Result<Option<(String, Vec<IndexEntry>)>> {
        if self.entries.is_empty() {
            let _ = std::fs::remove_file(&self.tmp);
            return Ok(None);
        }
        self.seal(0)?;
        self.seal(1)?;
        self.flush_sealed()?;
        let index_offset = self.written;
        let mut idx = Vec::with_capacity(
            self.blocks.len() * BLOCK_ENTRY_LEN + FANOUT_LEN + self.entries.len() * INDEX_ENTRY_LEN,
        );
        for b in &self.blocks {
            idx.extend_from_slice(&b.offset.to_le_bytes());
            idx.extend_from_slice(&b.clen.to_le_bytes());
            idx.extend_from_slice(&b.ulen.to_le_bytes());
        }
        let mut entries = std::mem::take(&mut self.entries);
        entries.sort_by_key(|e| e.id);
        entries.dedup_by(|a, b| a.id == b.id);
        let mut fan = [0u32; 256];
        for e in &entries {
            fan[e.id.0[0] as usize] += 1;
        }
        let mut acc = 0u32;
        for f in fan.iter_mut() {
            acc += *f;
            *f = acc;
        }
        for f in fan {
            idx.extend_from_slice(&f.to_le_bytes());
        }
        for e in &entries {
            idx.extend_from_slice(&e.id.0);
            idx.push(e.kind as u8);
            idx.extend_from_slice(&[0, 0, 0]);
            idx.extend_from_slice(&e.block.to_le_bytes());
            idx.extend_from_slice(&e.offset.to_le_bytes());
            idx.extend_from_slice(&e.len.to_le_bytes());
        }
        self.write_raw(&idx)?;
        let digest = *self.hasher.finalize().as_bytes();
        let mut trailer = Vec::with_capacity(TRAILER_LEN as usize);
        trailer.extend_from_slice(b"SAGEPIDX");
        trailer.extend_from_slice(&index_offset.to_le_bytes());
        trailer.extend_from_slice(&(self.blocks.len() as u32).to_le_bytes());
        trailer.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        trailer.extend_from_slice(&digest);
        trailer.extend_from_slice(TRAILER_MAGIC);
        let tmp = self.tmp.clone();
        self.file
            .write_all(&trailer)
            .ctx(|| format!("writing {}", tmp.display()))?;
        self.file
            .flush()
            .ctx(|| format!("writing {}", tmp.display()))?;
        failpoint::hit("pack-before-fsync");
        self.file
            .get_ref()
            .sync_all()
            .ctx(|| format!("syncing {}", tmp.display()))?;
        let name = hex::encode(&digest[..16]);
        let dest = self.dir.join(format!("{name}.pack"));
        std::fs::rename(&self.tmp, &dest)
            .ctx(|| format!("renaming {} into place", tmp.display()))?;
        crate::fsutil::fsync_dir(&self.dir)?;
        failpoint::hit("after-pack-rename");
        Ok(Some((name, entries)))
    }
}

impl Drop for PackWriter {
    fn drop(&mut self) {
        // An abandoned writer leaves no temp file behind (finish renamed it if it succeeded).
        let _ = std::fs::remove_file(&self.tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_then_read_every_object() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = PackWriter::new(dir.path(), 1).unwrap();
        let mut objs = Vec::new();
        for i in 0..5000u32 {
            let bytes = format!(
                "{{\"line\":{i},\"pad\":\"{}\"}}\n",
                "x".repeat((i % 900) as usize)
            )
            .into_bytes();
            let id = ObjectId::hash(Kind::Line, &bytes);
            w.add(Kind::Line, id, &bytes).unwrap();
            objs.push((id, bytes));
        }
        let (name, _) = w.finish().unwrap().unwrap();
        let pack = Pack::open(&dir.path().join(format!("{name}.pack"))).unwrap();
        assert!(pack.block_count() > 1);
        let (stored, actual) = pack.checksums();
        assert_eq!(stored, actual);
        for (id, bytes) in &objs {
            let e = pack.find(id).unwrap().unwrap();
            let block = pack.read_block(e.block).unwrap();
            assert_eq!(
                &block[e.offset as usize..(e.offset + e.len) as usize],
                &bytes[..]
            );
        }
        assert!(pack
            .find(&ObjectId::hash(Kind::Line, b"nope"))
            .unwrap()
            .is_none());
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temp file is left behind");
    }

    #[test]
    fn truncated_pack_is_an_error_not_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = PackWriter::new(dir.path(), 1).unwrap();
        w.add(Kind::Blob, ObjectId::hash(Kind::Blob, b"abc"), b"abc")
            .unwrap();
        let (name, _) = w.finish().unwrap().unwrap();
        let p = dir.path().join(format!("{name}.pack"));
        let len = std::fs::metadata(&p).unwrap().len();
        for cut in [0, 10, len / 2, len - 1] {
            let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
            f.set_len(cut).unwrap();
            assert!(
                matches!(Pack::open(&p), Err(Error::CorruptPack { .. })),
                "cut at {cut}"
            );
        }
    }
}
