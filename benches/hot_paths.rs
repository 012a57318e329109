//! Criterion benches for sage's hot paths, and the measurement behind the index choice in
//! store-format.md (one SQLite row per object versus the sorted index inside each pack).
//!
//! Run: `cargo bench --bench hot_paths` (add `-- --quick` for a fast pass).

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use sage::id::{Kind, ObjectId};
use sage::object::DataRef;
use sage::pack::{Pack, PackWriter};
use sage::prolly::{build_lines, NullSink};

/// Deterministic transcript-like lines (~600 B median).
fn lines(n: usize) -> Vec<Vec<u8>> {
    let mut x: u64 = 0x9e3779b97f4a7c15;
    (0..n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let pad = 200 + (x % 1200) as usize;
            format!(
                "{{\"type\":\"assistant\",\"uuid\":\"{i:08x}-{x:016x}\",\"timestamp\":\"2026-01-01T00:00:{:02}.000Z\",\"message\":{{\"role\":\"assistant\",\"content\":\"{}\"}}}}\n",
                i % 60,
                "lorem ipsum dolor sit amet ".repeat(pad / 27)
            )
            .into_bytes()
        })
        .collect()
}

fn hash_lines(c: &mut Criterion) {
    let ls = lines(10_000);
    let bytes: usize = ls.iter().map(|l| l.len()).sum();
    let mut g = c.benchmark_group("scan");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("hash 10k lines", |b| {
        b.iter(|| {
            for l in &ls {
                black_box(ObjectId::hash(Kind::Line, l));
            }
        })
    });
    let refs: Vec<DataRef> = ls
        .iter()
        .map(|l| DataRef {
            id: ObjectId::hash(Kind::Line, l),
            len: l.len() as u64,
        })
        .collect();
    g.bench_function("prolly tree of 10k lines", |b| {
        b.iter(|| build_lines(black_box(&refs), &mut NullSink).unwrap())
    });
    g.finish();
}

fn pack_write_and_read(c: &mut Criterion) {
    let ls = lines(10_000);
    let bytes: usize = ls.iter().map(|l| l.len()).sum();
    let ids: Vec<ObjectId> = ls.iter().map(|l| ObjectId::hash(Kind::Line, l)).collect();
    let mut g = c.benchmark_group("pack");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("write 10k lines (zstd 1, 1 MB blocks)", |b| {
        b.iter(|| {
            let dir = tempfile::tempdir().unwrap();
            let mut w = PackWriter::new(dir.path(), 1).unwrap();
            for (l, id) in ls.iter().zip(&ids) {
                w.add(Kind::Line, *id, l).unwrap();
            }
            w.finish().unwrap()
        })
    });
    let dir = tempfile::tempdir().unwrap();
    let mut w = PackWriter::new(dir.path(), 1).unwrap();
    for (l, id) in ls.iter().zip(&ids) {
        w.add(Kind::Line, *id, l).unwrap();
    }
    let (name, _) = w.finish().unwrap().unwrap();
    let pack = Pack::open(&dir.path().join(format!("{name}.pack"))).unwrap();
    g.throughput(Throughput::Elements(ids.len() as u64));
    g.bench_function("index lookup of 10k ids", |b| {
        b.iter(|| {
            for id in &ids {
                black_box(pack.find(id).unwrap());
            }
        })
    });
    g.finish();
}

/// The alternative index: one SQLite row per object (id, pack, block, offset, len).
fn sqlite_index(c: &mut Criterion) {
    let ids: Vec<ObjectId> = (0..10_000u32)
        .map(|i| ObjectId::hash(Kind::Line, &i.to_le_bytes()))
        .collect();
    let mut g = c.benchmark_group("index choice");
    g.sample_size(10);
    g.throughput(Throughput::Elements(ids.len() as u64));
    g.bench_function("sqlite: insert 10k object rows (one transaction)", |b| {
        b.iter(|| {
            let dir = tempfile::tempdir().unwrap();
            let mut conn = rusqlite::Connection::open(dir.path().join("x.db")).unwrap();
            conn.pragma_update(None, "journal_mode", "WAL").unwrap();
            conn.execute_batch("CREATE TABLE objects (id BLOB PRIMARY KEY, pack INTEGER, block INTEGER, off INTEGER, len INTEGER) WITHOUT ROWID")
                .unwrap();
            let tx = conn.transaction().unwrap();
            {
                let mut st = tx.prepare("INSERT INTO objects VALUES (?1, 1, ?2, ?3, 600)").unwrap();
                for (i, id) in ids.iter().enumerate() {
                    st.execute(rusqlite::params![&id.0[..], (i / 1000) as i64, (i % 1000) as i64 * 600]).unwrap();
                }
            }
            tx.commit().unwrap();
        })
    });
    let dir = tempfile::tempdir().unwrap();
    let conn = rusqlite::Connection::open(dir.path().join("x.db")).unwrap();
    conn.execute_batch("CREATE TABLE objects (id BLOB PRIMARY KEY, pack INTEGER, block INTEGER, off INTEGER, len INTEGER) WITHOUT ROWID")
        .unwrap();
    for id in &ids {
        conn.execute("INSERT INTO objects VALUES (?1, 1, 0, 0, 600)", [&id.0[..]])
            .unwrap();
    }
    g.bench_function("sqlite: look up 10k ids", |b| {
        let mut st = conn
            .prepare("SELECT block, off, len FROM objects WHERE id = ?1")
            .unwrap();
        b.iter(|| {
            for id in &ids {
                let r: (i64, i64, i64) = st
                    .query_row([&id.0[..]], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .unwrap();
                black_box(r);
            }
        })
    });
    g.bench_function(
        "pack index: write 10k entries with the pack (sorted, fanout)",
        |b| {
            b.iter(|| {
                let dir = tempfile::tempdir().unwrap();
                let mut w = PackWriter::new(dir.path(), 1).unwrap();
                for id in &ids {
                    w.add(Kind::Line, *id, &id.0).unwrap();
                }
                w.finish().unwrap()
            })
        },
    );
    g.finish();
}

criterion_group!(benches, hash_lines, pack_write_and_read, sqlite_index);
criterion_main!(benches);
