//! Fuzz target for the trailer parser: it must never panic, and what it returns must look like
//! what git prints (non-empty single-line keys, trimmed single-line values).
//!
//! Run with `cargo +nightly fuzz run trailers` from the repository root.

#![no_main]

use agentgate::trailers::{parse, TrailerAlias, TrailerConfig};
use libfuzzer_sys::fuzz_target;

/// git's `isspace`.
fn is_git_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

fn configs() -> Vec<TrailerConfig> {
    let default = TrailerConfig::default();
    let mut separators = TrailerConfig {
        separators: ":#=".into(),
        ..TrailerConfig::default()
    };
    separators.aliases = vec![TrailerAlias {
        name: "foo".into(),
        key: Some("Reviewed-by".into()),
    }];
    let comment = TrailerConfig {
        comment: "//".into(),
        configured_keys: vec!["Co-authored-by".into(), "ack".into()],
        ..TrailerConfig::default()
    };
    vec![default, separators, comment]
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let configs = configs();
    let cfg = &configs[usize::from(selector) % configs.len()];
    let message = String::from_utf8_lossy(rest);

    let trailers = parse(&message, cfg);
    for t in &trailers {
        assert!(!t.key.is_empty(), "empty key in {t:?}");
        assert!(
            !t.key.contains('\n') && !t.value.contains('\n'),
            "newline in {t:?}"
        );
        assert!(
            !t.key.starts_with(is_git_space) && !t.key.ends_with(is_git_space),
            "{t:?}"
        );
        assert!(
            !t.value.starts_with(is_git_space) && !t.value.ends_with(is_git_space),
            "{t:?}"
        );
        let configured = cfg
            .aliases
            .iter()
            .any(|a| a.key.as_deref() == Some(t.key.as_str()));
        assert!(
            configured
                || t.key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-'),
            "key is neither a token nor a configured key: {t:?}"
        );
    }
    assert_eq!(parse(&message, cfg), trailers, "parse is not deterministic");
});
