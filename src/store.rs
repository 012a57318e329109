//! The object store: the set of packs in `<store>/packs`, lookups across them, reads through a
//! small cache of decompressed blocks, and an `Inserter` that writes new objects to one new
//! pack, skipping those the store already holds.

use crate::error::{Error, IoContext, Result};
use crate::id::{Kind, ObjectId};
use crate::object::{decode, Chunked, DataRef, Entry, EntryKind, RawObject, Session};
use crate::pack::{IndexEntry, Pack, PackWriter};
use crate::prolly::{ObjectSink, ObjectSource};
use std::collections::{HashMap, HashSet, VecDeque};
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
    /// Tombstoned data ids (`sage purge`, store-format.md §14.5): never stored again, skipped
    /// by every reader. Loaded by `Repo` from the `purged` table.
    pub purged: HashSet<ObjectId>,
    /// Objects built in memory while reading (a session's purge-filtered version): read like
    /// stored objects, and written to the next pack an `Inserter` makes, so that a tree that
    /// names one never lacks it.
    mem: Mutex<HashMap<ObjectId, (Kind, Vec<u8>)>>,
    /// Session id -> its purge-filtered entry (id, size), or None when nothing of it remains.
    pub(crate) filtered: Mutex<HashMap<ObjectId, Option<(ObjectId, u64)>>>,
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
            purged: HashSet::new(),
            mem: Mutex::new(HashMap::new()),
            filtered: Mutex::new(HashMap::new()),
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
        let Some((pack, e)) = self.locate(&id)? else {
            return match self.mem.lock().expect("mem lock").get(&id) {
                Some((k, b)) if *k == kind => Ok(b.clone()),
                _ => Err(Error::MissingObject { id }),
            };
        };
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
                // Purged lines are skipped wherever a session is written out (a conflict side,
                // say, that no purge-filtered tree replaced).
                for l in crate::prolly::read_lines(self, s.lines)? {
                    if !self.purged.contains(&l.id) {
                        self.write_data(l, Kind::Line, out)?;
                    }
                }
                if let Some(t) = s.tail.filter(|t| !self.purged.contains(&t.id)) {
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

    pub fn is_purged(&self, id: &ObjectId) -> bool {
        self.purged.contains(id)
    }

    /// Memory objects no pack holds yet.
    pub(crate) fn unpersisted(&self) -> Vec<RawObject> {
        let mem = self.mem.lock().expect("mem lock");
        mem.iter()
            .filter(|(id, _)| !matches!(self.locate(id), Ok(Some(_))))
            .map(|(id, (k, b))| RawObject {
                kind: *k,
                id: *id,
                bytes: b.clone(),
            })
            .collect()
    }

    /// Keep an object in memory (readable at once; persisted by the next pack written).
    pub(crate) fn put_mem(&self, obj: RawObject) {
        self.mem
            .lock()
            .expect("mem lock")
            .insert(obj.id, (obj.kind, obj.bytes));
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
        // A purged line or file never gets its bytes back into a pack (store-format.md §14.5).
        if self.has(&id)? || (kind.is_data() && self.store.purged.contains(&id)) {
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
    pub fn finish(mut self) -> Result<Option<(String, Vec<IndexEntry>)>> {
        if self.writer.is_some() {
            // Memory objects go with any pack written: a tree in this pack may name them.
            let mem: Vec<(ObjectId, (Kind, Vec<u8>))> = self
                .store
                .mem
                .lock()
                .expect("mem lock")
                .iter()
                .map(|(id, v)| (*id, v.clone()))
                .collect();
            for (id, (kind, bytes)) in mem {
                self.insert(kind, id, &bytes)?;
            }
        }
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
