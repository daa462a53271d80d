//! Issue 10: the ways around the hook that come from agentgate reading objects and refs
//! differently from git. Each module is one class of bypass from the security review
//! (tests/bypasses/repro-*.sh), with the variants an attacker with push rights would try next,
//! each through a real `git push` into a bare repository with the hook installed, in every
//! repository format where agentgate's two read backends differ. Every class also has a
//! positive control: the honest version of the push is accepted, so no test passes by refusing
//! everything.

/// One `#[test]` per repository format for a test body taking a `Fmt`, each with its own name
/// (so a failure names its format and `cargo test --test it bypass:: sha256` selects by format).
macro_rules! per_format {
    ($body:ident: $($name:ident => $fmt:ident),+ $(,)?) => {
        $(
            #[test]
            fn $name() {
                $body(crate::bypass::fixture::Fmt::$fmt)
            }
        )+
    };
}

pub(crate) mod fixture;

mod deadline;
mod encodings;
mod fail_open;
mod headers;
mod namespaces;
mod replace;
mod symrefs;
