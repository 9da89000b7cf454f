//! Micro-benchmark of the hot path on a fixed, generated page set: decode (REST JSON pages →
//! Arrow, and the same records as Bulk API 2.0 CSV → Arrow) and encode (Arrow → ZSTD
//! Parquet), separately and together.
//!
//! `cargo bench --bench decode_encode` (set FORCELAKE_BENCH_PAGES to change the size).

use std::sync::Arc;
use std::time::Instant;

use forcelake::decode::{CsvDecoder, PageDecoder};
use forcelake::emulator::data::{generate, GenConfig};
use forcelake::emulator::render_page;
use forcelake::salesforce::describe::ObjectDescribe;
use forcelake::schema::ObjectSchema;
use forcelake::sink::writer::{ChunkFileWriter, ParquetSettings};

/// Decodes `pages` and encodes them into one chunk's Parquet file, as a chunk does.
fn decode_encode(
    schema: &ObjectSchema,
    settings: &ParquetSettings,
    pages: &[Vec<u8>],
    batch_rows: usize,
    dir: &std::path::Path,
) {
    let mut dec = PageDecoder::new(schema);
    let mut w = ChunkFileWriter::new(schema.arrow.clone(), settings, "Account", "bench", dir);
    for b in pages {
        dec.decode_page(b).expect("decode");
        if dec.buffered_rows() >= batch_rows {
            w.write(&dec.finish_batch().expect("batch")).expect("write");
        }
    }
    w.write(&dec.finish_batch().expect("batch")).expect("write");
    drop(w.finish().expect("finish"));
}

fn main() {
    let pages: usize = std::env::var("FORCELAKE_BENCH_PAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let per_page = 2000;
    let rows = pages * per_page;
    let gen = GenConfig {
        seed: 1,
        rows: [("Account".to_string(), rows)].into(),
        default_rows: 0,
        anchor_ms: 1_767_225_600_000,
        days: 365,
        synthetic: Default::default(),
    };
    let data = generate(&gen);
    let table = data.table("Account").expect("Account");
    // Every Account field except compounds' duplicates: ~40 mixed columns.
    let fields: Vec<usize> = (0..table.def.fields.len()).collect();
    let describe: ObjectDescribe = serde_json::from_value(serde_json::json!({
        "name": "Account",
        "fields": table.def.fields.iter().map(|f| serde_json::json!({"name": f.name, "type": f.ftype, "label": f.label, "custom": f.custom, "precision": f.precision, "scale": f.scale})).collect::<Vec<_>>()
    }))
    .expect("describe");
    let names: Vec<String> = table.def.fields.iter().map(|f| f.name.clone()).collect();
    let schema = Arc::new(
        ObjectSchema::resolve(
            &describe,
            Some(&names),
            "LastModifiedDate",
            &Default::default(),
        )
        .expect("schema"),
    );
    let bodies: Vec<Vec<u8>> = (0..pages)
        .map(|p| {
            let idx: Vec<u32> = ((p * per_page) as u32..((p + 1) * per_page) as u32).collect();
            let next = (p + 1 < pages)
                .then(|| format!("/services/data/v62.0/query/01gX-{}", (p + 1) * per_page));
            render_page(table, &idx, &fields, rows, next.as_deref())
        })
        .collect();
    let bytes: usize = bodies.iter().map(Vec::len).sum();
    println!(
        "page set: {pages} pages × {per_page} records, {} columns, {:.1} MB JSON ({} B/record)",
        schema.columns.len(),
        bytes as f64 / 1e6,
        bytes / rows
    );

    // The same records as Bulk CSV pages of 100,000 (compounds as their components).
    let bulk_fields: Vec<usize> = schema
        .bulk_select_list()
        .iter()
        .map(|n| table.def.field_index(n).expect("bulk field"))
        .collect();
    let csv_pages: Vec<Vec<u8>> = (0..rows as u32)
        .collect::<Vec<_>>()
        .chunks(100_000)
        .map(|idx| forcelake::emulator::bulk::csv_page(table, idx, &bulk_fields))
        .collect();
    let csv_bytes: usize = csv_pages.iter().map(Vec::len).sum();
    println!(
        "the same records as Bulk CSV: {} pages, {:.1} MB ({} B/record)",
        csv_pages.len(),
        csv_bytes as f64 / 1e6,
        csv_bytes / rows
    );
    let mut csv_best = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let mut dec = CsvDecoder::new(&schema);
        for p in &csv_pages {
            dec.start_page();
            // as the network hands it over
            for c in p.chunks(64 << 10) {
                dec.feed(c).expect("csv");
                if dec.buffered_rows() >= 8192 {
                    drop(dec.finish_batch().expect("batch"));
                }
            }
            dec.end_page().expect("page");
        }
        drop(dec.finish_batch().expect("batch"));
        csv_best = csv_best.min(t.elapsed().as_secs_f64());
    }

    let tmp = tempfile::tempdir().expect("tmp");
    let settings = ParquetSettings::new(forcelake::config::Compression::Zstd, 128 << 20);
    let mut best = [f64::MAX; 4];
    for _ in 0..3 {
        // decode with the serde visitor alone (what pages the fast reader declines get)
        let t = Instant::now();
        let mut dec = PageDecoder::new(&schema).without_fast_reader();
        for b in &bodies {
            dec.decode_page(b).expect("decode");
            if dec.buffered_rows() >= 8192 {
                drop(dec.finish_batch().expect("batch"));
            }
        }
        drop(dec.finish_batch().expect("batch"));
        best[3] = best[3].min(t.elapsed().as_secs_f64());
        // decode only
        let t = Instant::now();
        let mut dec = PageDecoder::new(&schema);
        let mut batches = Vec::new();
        for b in &bodies {
            dec.decode_page(b).expect("decode");
            if dec.buffered_rows() >= 8192 {
                batches.push(dec.finish_batch().expect("batch"));
            }
        }
        batches.push(dec.finish_batch().expect("batch"));
        best[0] = best[0].min(t.elapsed().as_secs_f64());
        // encode only
        let t = Instant::now();
        let mut w = ChunkFileWriter::new(
            schema.arrow.clone(),
            &settings,
            "Account",
            "bench",
            tmp.path(),
        );
        for b in &batches {
            w.write(b).expect("write");
        }
        drop(w.finish().expect("finish"));
        best[1] = best[1].min(t.elapsed().as_secs_f64());
        // both, streaming (one thread)
        let t = Instant::now();
        decode_encode(&schema, &settings, &bodies, 8192, tmp.path());
        best[2] = best[2].min(t.elapsed().as_secs_f64());
    }
    // Two chunks on two threads, as `sync` runs them: forcelake's settings (a batch per page,
    // row groups cut at the memory share of `memory_limit_mb = 96` over 8 chunks) against the
    // best this code can do without a memory bound (8,192-row batches, one row group).
    let pipeline = |batch_rows: usize, rg_memory: usize| {
        let settings = ParquetSettings::new(forcelake::config::Compression::Zstd, rg_memory);
        let t = Instant::now();
        std::thread::scope(|sc| {
            for half in bodies.chunks(bodies.len().div_ceil(2)) {
                let (schema, settings, dir) = (&schema, &settings, tmp.path());
                sc.spawn(move || decode_encode(schema, settings, half, batch_rows, dir));
            }
        });
        t.elapsed().as_secs_f64()
    };
    let (mut ours, mut unbounded) = (f64::MAX, f64::MAX);
    for _ in 0..3 {
        // sync hands the writer a batch once 1,000 rows are buffered: one page
        ours = ours.min(pipeline(1000, (96 << 20) / 8 / 4));
        unbounded = unbounded.min(pipeline(8192, 256 << 20));
    }
    println!(
        "{:<44} {:>10} {:>14} {:>12}",
        "stage (best of 3)", "seconds", "records/s", "JSON MB/s"
    );
    for (name, s) in [
        ("decode (JSON → Arrow)", best[0]),
        ("decode, serde visitor only", best[3]),
        ("decode Bulk CSV (CSV → Arrow)", csv_best),
        ("encode (Arrow → ZSTD Parquet)", best[1]),
        ("decode + encode, 1 thread", best[2]),
        ("decode + encode, 2 chunks on 2 threads (sync)", ours),
        ("same, best in-process (no memory bound)", unbounded),
    ] {
        println!(
            "{:<44} {:>10.3} {:>14.0} {:>12.1}",
            name,
            s,
            rows as f64 / s,
            bytes as f64 / 1e6 / s
        );
    }
    println!(
        "sync's decode + encode path vs the best in-process path: {:.2}x the time",
        ours / unbounded
    );
    println!(
        "fast reader vs serde visitor: {:.2}x the decode speed",
        best[3] / best[0]
    );
    println!(
        "Bulk CSV decoder vs REST fast reader: {:.2}x the records/s",
        best[0] / csv_best
    );
}
