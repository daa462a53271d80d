//! Function-level view of the hook's per-commit cost: raw commit parsing, trailer parsing and
//! detection, in nanoseconds per commit (medians of repeated passes over a fixed corpus).
//! `cargo bench --bench detect`; the end-to-end comparisons with git are in scripts/bench.sh.

use std::time::Instant;

use agentgate_git::{Commit, ObjectId};
use agentgate_policy::detect::{Detect, Detector};
use agentgate_policy::trailers::{parse, parse_block, TrailerConfig};

fn corpus() -> Vec<Vec<u8>> {
    (0..10_000)
        .map(|i| {
            let msg = match i % 20 {
                0 => format!("feat: change {i}\n\nAgent-written change.\n\nCo-Authored-By: Claude <noreply@anthropic.com>\nSigned-off-by: Ada <ada@example.com>\n"),
                7 => format!("docs: note {i}\n\nWe tried Claude; see Co-authored-by: in the docs.\nGenerated with care.\n"),
                _ => format!("fix: change {i}\n\nBody text line one.\nBody text line two.\n"),
            };
            format!(
                "tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nparent 1111111111111111111111111111111111111111\nauthor Ada Lovelace <ada@example.com> 1700000000 +0000\ncommitter Ada Lovelace <ada@example.com> 1700000000 +0000\n\n{msg}"
            )
            .into_bytes()
        })
        .collect()
}

fn median_ns_per_item(passes: usize, items: usize, mut f: impl FnMut() -> usize) -> f64 {
    let mut samples = Vec::new();
    let mut sink = 0;
    for _ in 0..passes {
        let t = Instant::now();
        sink += f();
        samples.push(t.elapsed().as_nanos() as f64 / items as f64);
    }
    assert!(sink > 0);
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    samples[samples.len() / 2]
}

fn main() {
    let raw = corpus();
    let id = ObjectId::zero(20);
    let commits: Vec<Commit> = raw
        .iter()
        .map(|r| agentgate_git::object::read_commit(&id, r).unwrap())
        .collect();
    let tc = TrailerConfig::default();
    let detector = Detector::new(&Detect::known_agents());

    let parse_ns = median_ns_per_item(15, raw.len(), || {
        raw.iter()
            .map(|r| {
                agentgate_git::object::read_commit(&id, r)
                    .unwrap()
                    .message
                    .len()
            })
            .sum()
    });
    let trailer_ns = median_ns_per_item(15, commits.len(), || {
        commits
            .iter()
            .map(|c| parse(&c.message, &tc).len() + 1)
            .sum()
    });
    let detect_ns = median_ns_per_item(15, commits.len(), || {
        commits
            .iter()
            .map(|c| detector.detect(c, &parse_block(&c.message, &tc)).len() + 1)
            .sum()
    });
    let compile_ns = median_ns_per_item(15, 1, || {
        Detector::new(&Detect::known_agents()).rule_ids().count()
    });
    println!(
        "known-agents rules, compiled once per hook run: {:.0} us",
        compile_ns / 1000.0
    );
    println!("commit object parse      {parse_ns:8.0} ns/commit");
    println!("trailer parse            {trailer_ns:8.0} ns/commit");
    println!("trailers + detection     {detect_ns:8.0} ns/commit");
}
