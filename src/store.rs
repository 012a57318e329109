//! The object store: the set of packs in `<store>/packs`, lookups across them, reads through a
//! small cache of decompressed blocks, and an `Inserter` that writes new objects to one new
//! pack, skipping those the store already holds.

use crate::error::{Error, IoContext, Result};
use crate::id::{Kind, ObjectId};
use crate::object::{decode, Chunked, DataRef, Entry, EntryKind, RawObject, Session};
use crate::pack::{IndexEntry, Pack, PackWriter};
use crate::prolly::{ObjectSink, ObjectSource};
use std::collections::{HashSet, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

const CACHE_BLOCKS: usize = 24;

/// Recently decompressed blocks, most recent first, keyed by (pack index, block).
type BlockCache = VecDeque<((usize, u32), Arc<Vec<u8>>)>;

pub struct ObjectStore {
    pub dir: PathBuf,
    packs: Vec<Pack>,
    cache: Mutex<BlockCache>,
    /// Packs that failed to open: reported by verify, skipped by reads.
    pub broken: Vec<(PathBuf, String)>,
    pub level: i32,
}

impl ObjectStore {
    pub fn open(dir: &Path) -> Result<ObjectStore> {
        let mut s = ObjectStore {
            dir: dir.to_path_buf(),
            packs: Vec::new(),
            cache: Mutex::new(VecDeque::new()),
            broken: Vec::new(),
            level: std::env::var("SAGE_ZSTD_LEVEL")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(3), // level 3: ~10% smaller than 1 for ~15% more time (README figures)
        };
        s.reload()?;
        Ok(s)
    }

    pub fn packs_dir(&self) -> PathBuf {
        self.dir.join("packs")
    }

    /// Pack file names on disk (`<name>.pack`, temp files excluded), sorted.
    pub fn pack_paths(dir: &Path) -> Result<Vec<PathBuf>> {
        let pd = dir.join("packs");
        let mut out = Vec::new();
        let rd = match std::fs::read_dir(&pd) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(Error::io(format!("listing {}", pd.display()), e)),
        };
        for ent in rd {
            let ent = ent.ctx(|| format!("listing {}", pd.display()))?;
            let name = ent.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".pack") && !name.starts_with("tmp-") {
                out.push(ent.path());
            }
        }
        out.sort();
        Ok(out)
    }

    pub fn reload(&mut self) -> Result<()> {
        self.packs.clear();
        self.broken.clear();
        self.cache.lock().expect("cache lock").clear();
        for p in Self::pack_paths(&self.dir)? {
            match Pack::open(&p) {
                Ok(pack) => self.packs.push(pack),
                Err(e) => self.broken.push((p, e.to_string())),
            }
        }
        Ok(())
    }

    pub fn add_pack(&mut self, name: &str) -> Result<()> {
        let p = self.packs_dir().join(format!("{name}.pack"));
        self.packs.push(Pack::open(&p)?);
        Ok(())
    }

    pub fn packs(&self) -> &[Pack] {
        &self.packs
    }

    pub fn locate(&self, id: &ObjectId) -> Result<Option<(usize, IndexEntry)>> {
        for (i, p) in self.packs.iter().enumerate().rev() {
            if let Some(e) = p.find(id)? {
                return Ok(Some((i, e)));
            }
        }
        Ok(None)
    }

    pub fn contains(&self, id: &ObjectId) -> Result<bool> {
        Ok(self.locate(id)?.is_some())
    }

    fn block(&self, pack: usize, block: u32) -> Result<Arc<Vec<u8>>> {
        {
            let mut c = self.cache.lock().expect("cache lock");
            if let Some(pos) = c.iter().position(|(k, _)| *k == (pack, block)) {
                let hit = c.remove(pos).expect("position is valid");
                let data = hit.1.clone();
                c.push_front(hit);
                return Ok(data);
            }
        }
        let data = Arc::new(self.packs[pack].read_block(block)?);
        let mut c = self.cache.lock().expect("cache lock");
        c.push_front(((pack, block), data.clone()));
        c.truncate(CACHE_BLOCKS);
        Ok(data)
    }

    /// Read an object, checking that it has the expected kind. Bytes are not re-hashed here
    /// (verify --read-data does that); a block that does not decompress is an error.
    pub fn read(&self, id: ObjectId, kind: Kind) -> Result<Vec<u8>> {
        let (pack, e) = self.locate(&id)?.ok_or(Error::MissingObject { id })?;
        if e.kind != kind {
            return Err(Error::CorruptObject {
                id,
                why: format!("is a {}, expected a {}", e.kind.name(), kind.name()),
            });
        }
        let block = self.block(pack, e.block)?;
        Ok(block[e.offset as usize..(e.offset + e.len) as usize].to_vec())
    }

    /// Read and re-hash an object.
    pub fn read_verified(&self, id: ObjectId, kind: Kind) -> Result<Vec<u8>> {
        let b = self.read(id, kind)?;
        if ObjectId::hash(kind, &b) != id {
            return Err(Error::CorruptObject {
                id,
                why: "content does not match its id".into(),
            });
        }
        Ok(b)
    }

    /// Stream the bytes of a line or file (`small_kind` = Line or Blob) to `out`.
    pub fn write_data(&self, r: DataRef, small_kind: Kind, out: &mut dyn Write) -> Result<()> {
        if r.is_chunked() {
            let list: Chunked = decode(r.id, &self.read(r.id, Kind::Chunked)?)?;
            for c in list.chunks {
                let b = self.read_verified(c.id, Kind::Blob)?;
                out.write_all(&b).ctx(|| "writing output".into())?;
            }
        } else {
            let b = self.read_verified(r.id, small_kind)?;
            out.write_all(&b).ctx(|| "writing output".into())?;
        }
        Ok(())
    }

    pub fn data_bytes(&self, r: DataRef, small_kind: Kind) -> Result<Vec<u8>> {
        let mut v = Vec::with_capacity(r.len.min(64 << 20) as usize);
        self.write_data(r, small_kind, &mut v)?;
        Ok(v)
    }

    /// The raw bytes of one entry (file, session, symlink target) to `out`.
    pub fn write_entry(&self, e: &Entry, out: &mut dyn Write) -> Result<()> {
        let missing_id = || Error::Other(format!("entry {} has no object id", e.name));
        match e.kind {
            EntryKind::File => {
                self.write_data(e.data_ref().ok_or_else(missing_id)?, Kind::Blob, out)
            }
            EntryKind::Session => {
                let id = e.id.ok_or_else(missing_id)?;
                let s: Session = decode(id, &self.read(id, Kind::Session)?)?;
                for l in crate::prolly::read_lines(self, s.lines)? {
                    self.write_data(l, Kind::Line, out)?;
                }
                if let Some(t) = s.tail {
                    self.write_data(t, Kind::Line, out)?;
                }
                Ok(())
            }
            EntryKind::Symlink => out.write_all(&e.target).ctx(|| "writing output".into()),
            EntryKind::Dir | EntryKind::Conflict => {
                Err(Error::Usage(format!("{} is not a file", e.name)))
            }
        }
    }

    pub fn total_size(&self) -> u64 {
        self.packs.iter().map(|p| p.size()).sum()
    }
}

impl ObjectSource for ObjectStore {
    fn get(&self, id: ObjectId, kind: Kind) -> Result<Vec<u8>> {
        self.read(id, kind)
    }
}

/// Writes new objects into one new pack; objects already in the store (or already added) are
/// skipped, which is the deduplication.
pub struct Inserter<'a> {
    store: &'a ObjectStore,
    writer: Option<PackWriter>,
    pending: HashSet<ObjectId>,
    pub new_objects: u64,
    pub new_bytes: u64,
}

impl<'a> Inserter<'a> {
    pub fn new(store: &'a ObjectStore) -> Inserter<'a> {
        Inserter {
            store,
            writer: None,
            pending: HashSet::new(),
            new_objects: 0,
            new_bytes: 0,
        }
    }

    pub fn has(&self, id: &ObjectId) -> Result<bool> {
        Ok(self.pending.contains(id) || self.store.contains(id)?)
    }

    pub fn insert(&mut self, kind: Kind, id: ObjectId, bytes: &[u8]) -> Result<bool> {
        if self.has(&id)? {
            return Ok(false);
        }
        if self.writer.is_none() {
            let dir = self.store.packs_dir();
            std::fs::create_dir_all(&dir).ctx(|| format!("creating {}", dir.display()))?;
            self.writer = Some(PackWriter::new(&dir, self.store.level)?);
        }
        self.writer
            .as_mut()
            .expect("created above")
            .add(kind, id, bytes)?;
        self.pending.insert(id);
        self.new_objects += 1;
        self.new_bytes += bytes.len() as u64;
        Ok(true)
    }

    pub fn store(&self) -> &ObjectStore {
        self.store
    }

    /// Make the pack durable; returns its name and index, or None when nothing was new.
    pub fn finish(self) -> Result<Option<(String, Vec<IndexEntry>)>> {
        match self.writer {
            Some(w) => w.finish(),
            None => Ok(None),
        }
    }
}

impl ObjectSink for Inserter<'_> {
    fn put(&mut self, obj: RawObject) -> Result<()> {
        self.insert(obj.kind, obj.id, &obj.bytes).map(|_| ())
    }
    fn add(&mut self, kind: Kind, id: ObjectId, bytes: &[u8]) -> Result<()> {
        self.insert(kind, id, bytes).map(|_| ())
    }
}
