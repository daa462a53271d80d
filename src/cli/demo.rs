//! `agentgate demo`: a throwaway server, an agent commit refused, then the fix
//! ([`crate::demo`]).

use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Keep the demo directory instead of deleting it.
    #[arg(long)]
    pub keep: bool,
    /// Create the demo in this (new or empty) directory instead of a temporary one.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}
