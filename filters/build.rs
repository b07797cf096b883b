//! Packs the four tiktoken vocabularies (taken from tiktoken-rs, which
//! embeds OpenAI's `.tiktoken` files) into the layout of
//! `src/tokens/pack.rs`, written to `$OUT_DIR/<encoding>.vocab` and embedded
//! in the binary by `src/tokens/vocab.rs`: read in place at run time, no
//! vocabulary is decoded or copied into the heap.

#[path = "src/tokens/pack.rs"]
#[allow(dead_code)]
mod pack;

use std::error::Error;
use std::path::PathBuf;

/// (name, ordinary tokens expected).
const ENCODINGS: [(&str, usize); 4] = [
    ("o200k_base", 199_998),
    ("cl100k_base", 100_256),
    ("p50k_base", 50_280),
    ("r50k_base", 50_256),
];

fn load(name: &str) -> Result<tiktoken_rs::CoreBPE, String> {
    match name {
        "o200k_base" => tiktoken_rs::o200k_base(),
        "cl100k_base" => tiktoken_rs::cl100k_base(),
        "p50k_base" => tiktoken_rs::p50k_base(),
        _ => tiktoken_rs::r50k_base(),
    }
    .map_err(|e| format!("{name}: {e}"))
}

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/tokens/pack.rs");
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let big_endian = std::env::var("CARGO_CFG_TARGET_ENDIAN")? == "big";
    for (name, expected) in ENCODINGS {
        let core = load(name)?;
        let specials: std::collections::HashSet<&[u8]> = core
            .special_tokens()
            .into_iter()
            .map(str::as_bytes)
            .collect();
        // Every rank below this is an ordinary token or a special.
        let limit = expected as u32 + 1024;
        let tokens: Vec<(u32, Vec<u8>)> = (0..limit)
            .filter_map(|rank| {
                let b = core.decode_bytes(&[rank]).ok()?;
                (!specials.contains(&b[..])).then_some((rank, b))
            })
            .collect();
        if tokens.len() != expected {
            return Err(format!(
                "{name}: {} ordinary tokens, expected {expected}",
                tokens.len()
            )
            .into());
        }
        let packed = pack::pack(&tokens, big_endian)
            .ok_or_else(|| format!("{name}: a rank is too large to pack"))?;
        std::fs::write(out.join(format!("{name}.vocab")), packed)?;
    }
    Ok(())
}
